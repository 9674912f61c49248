// Decode kernels one by one at Mamba-Codestral-7B's shape, against the two ceilings measured in the same
// run: device-to-device copy (read + write, 10 plain copies of 1 GiB) and a pure streaming read. Each
// kernel figure is the median of 5 replays of a CUDA graph of 64 launches that rotate over several layers'
// buffers (more bytes than L2), so it includes the launch gaps and the programmatic-dependent-launch
// overlap a decode step sees.
//   in_proj / out_proj / layer (in_proj + SSD step + out_proj, fp32 and bf16 state; the bf16 graph's edges
//   and how many are programmatic, i.e. PDL kept in the graph) / in_proj + out_proj alone at 1 row: weight GB/s
//   SSD step at B rows, fp32 and bf16 state: state GB/s (read + write)
//   in_proj / out_proj through cuBLASLt at T = 16, 64, 128 rows: weight GB/s
//   the layer stream probe (decode v26): in_proj + out_proj weights of 64 layers in one persistent launch with a grid
//   barrier before each GEMV, checked on one layer against the host first
// usage: cuda_decode_kernels [--trace DIR | --probe]
//   --probe: the table up to the layer stream probe's rows (decode v26), then stop
//   --trace DIR: only the one-row layer chain (fp32 and bf16 state), one replay with per-block timestamps of every
//   kernel (decode_trace.cuh) written to DIR/layer_{fp32,bf16}.csv; bench/decode_trace_summary.py reads them
#include <cstdio>
#include <cstring>

#ifdef PCM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/ops.h"
#include "tensor/dtype.h"

namespace pcm {
namespace {

constexpr int64_t kD = 4096, kH = 128, kP = 64, kN = 128, kG = 8, kK = 4;
constexpr int64_t kDi = kH * kP, kCd = kDi + 2 * kG * kN, kDpr = kDi + kCd + kH, kHpn = kH * kP * kN;
constexpr int kLaunches = 64;

template <class T>
T* dev_alloc(int64_t n) {
  void* p = nullptr;
  PCM_CUDA(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)));
  return static_cast<T*>(p);
}

// Random values with the given std (bf16 drawn on the device, widened for fp32 buffers).
void fill_bf16(uint16_t* p, int64_t n, float sd, uint64_t seed) { cuda::fill_uniform_bf16(p, n, sd, seed, nullptr); }
void fill_f32(float* p, int64_t n, float sd, uint64_t seed) {
  uint16_t* tmp = dev_alloc<uint16_t>(n);
  fill_bf16(tmp, n, sd, seed);
  cuda::bf16_to_f32(p, tmp, n, nullptr);
  PCM_CUDA(cudaDeviceSynchronize());
  cudaFree(tmp);
}

// Edges of a captured graph, and how many of them are programmatic (PDL launches kept their early start
// inside the graph: cudaGraphDependencyTypeProgrammatic).
std::pair<size_t, size_t> graph_edges(cudaGraph_t graph) {
  size_t n = 0;
  PCM_CUDA(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n));
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  PCM_CUDA(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n));
  size_t prog = 0;
  for (const auto& e : data) prog += e.type == cudaGraphDependencyTypeProgrammatic;
  return {n, prog};
}

// `launch(i)` for i = 0..kLaunches-1 captured as a graph (after one launch outside it: plans and lazy state), and
// instantiated; `edges`: the captured graph's edges (all, programmatic), when asked.
cudaGraphExec_t capture(cudaStream_t s, const std::function<void(int)>& launch, cudaGraph_t* graph,
                        std::pair<size_t, size_t>* edges = nullptr) {
  launch(0);
  PCM_CUDA(cudaStreamSynchronize(s));
  cudaGraphExec_t exec;
  PCM_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < kLaunches; ++i) launch(i);
  PCM_CUDA(cudaStreamEndCapture(s, graph));
  if (edges) *edges = graph_edges(*graph);
  PCM_CUDA(cudaGraphInstantiate(&exec, *graph, 0));
  return exec;
}

// Median ms of 5 runs of `work` on stream s, after one that warms up.
double median_ms(cudaStream_t s, const std::function<void()>& work) {
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 6; ++r) {
    PCM_CUDA(cudaEventRecord(e0, s));
    work();
    PCM_CUDA(cudaEventRecord(e1, s));
    PCM_CUDA(cudaEventSynchronize(e1));
    float t = 0;
    PCM_CUDA(cudaEventElapsedTime(&t, e0, e1));
    if (r > 0) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms[ms.size() / 2];
}

// Median µs per launch of `launch(i)` for i = 0..kLaunches-1, captured once as a graph.
double time_graph(cudaStream_t s, const std::function<void(int)>& launch, std::pair<size_t, size_t>* edges = nullptr) {
  cudaGraph_t graph;
  cudaGraphExec_t exec = capture(s, launch, &graph, edges);
  const double ms = median_ms(s, [&] { PCM_CUDA(cudaGraphLaunch(exec, s)); });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms * 1e3 / kLaunches;
}

void row(const char* what, double us, double bytes, double copy_gbs) {
  const double gbs = bytes / (us * 1e-6) / 1e9;
  std::printf("| %s | %.2f | %.0f | %.0f%% |\n", what, us, gbs, 100.0 * gbs / copy_gbs);
}

// Largest |device - host| / Σ|w x| over a few rows of y = W · bf16(tanh(x[:k])) (W [n, k] bf16 on the device).
double probe_row_error(const uint16_t* w, int64_t k, const std::vector<float>& x, const std::vector<float>& y,
                       std::initializer_list<int64_t> rows) {
  std::vector<uint16_t> wr(static_cast<size_t>(k));
  double worst = 0;
  for (int64_t r : rows) {
    PCM_CUDA(cudaMemcpy(wr.data(), w + r * k, k * 2, cudaMemcpyDeviceToHost));
    double dot = 0, mag = 0;
    for (int64_t i = 0; i < k; ++i) {
      const double t = static_cast<double>(bf16_to_f32(wr[i])) * bf16_to_f32(f32_to_bf16(std::tanh(x[i])));
      dot += t;
      mag += std::fabs(t);
    }
    worst = std::max(worst, std::fabs(dot - y[r]) / (mag + 1e-30));
  }
  return worst;
}

// decode v26: the bound a whole-step persistent kernel could reach at one row (layer_stream_probe.cu): the two weight
// streams of 64 layers (the Lr layers' buffers in turn) in one launch, a grid barrier before each GEMV, against a
// launch per GEMV. Checked first on one layer against the host.
void probe_rows(cudaStream_t s, const std::vector<uint16_t*>& w_in, const std::vector<uint16_t*>& w_out,
                double layer_bytes, double copy_gbs) {
  const int L = kLaunches, Lr = static_cast<int>(w_in.size());
  std::vector<const void*> pin(L), pout(L);
  for (int l = 0; l < L; ++l) pin[l] = w_in[l % Lr], pout[l] = w_out[l % Lr];
  const void** d_in = dev_alloc<const void*>(L);
  const void** d_out = dev_alloc<const void*>(L);
  PCM_CUDA(cudaMemcpy(d_in, pin.data(), L * sizeof(void*), cudaMemcpyHostToDevice));
  PCM_CUDA(cudaMemcpy(d_out, pout.data(), L * sizeof(void*), cudaMemcpyHostToDevice));
  float* y_in = dev_alloc<float>(kDpr);
  float* y_out = dev_alloc<float>(kD);
  unsigned* barrier = dev_alloc<unsigned>(1);
  fill_f32(y_out, kD, 1.0f, 21);
  std::vector<float> x0(kD), h_in(kDpr), h_out(kD);
  PCM_CUDA(cudaMemcpy(x0.data(), y_out, kD * 4, cudaMemcpyDeviceToHost));
  cuda::layer_stream_probe(y_in, y_out, d_in, d_out, 1, kDpr, kD, kD, kDi, true, true, barrier, s);
  PCM_CUDA(cudaStreamSynchronize(s));
  PCM_CUDA(cudaMemcpy(h_in.data(), y_in, kDpr * 4, cudaMemcpyDeviceToHost));
  PCM_CUDA(cudaMemcpy(h_out.data(), y_out, kD * 4, cudaMemcpyDeviceToHost));
  const double err = std::max(probe_row_error(w_in[0], kD, x0, h_in, {0, 1, 4097, 12345, kDpr - 1}),
                              probe_row_error(w_out[0], kDi, h_in, h_out, {0, 7, 2049, kD - 1}));
  std::printf("| layer stream probe check (1 layer vs host, max |err| / sum |w x|) | %.1e | %s | |\n", err,
              err < 1e-4 ? "ok" : "FAILED");
  struct Variant {
    const char* what;
    bool prefetch, one_launch;
  };
  for (const Variant& v : {Variant{"persistent: in_proj + out_proj, barrier, next weights asked first", true, true},
                           Variant{"persistent: in_proj + out_proj, barrier, weights asked after it", false, true},
                           Variant{"ring GEMVs, a launch each (no PDL), in_proj + out_proj", false, false}}) {
    const double ms = median_ms(s, [&] {
      cuda::layer_stream_probe(y_in, y_out, d_in, d_out, L, kDpr, kD, kD, kDi, v.prefetch, v.one_launch, barrier, s);
    });
    row(v.what, ms * 1e3 / L, layer_bytes, copy_gbs);
  }
  for (void* p : {static_cast<void*>(d_in), static_cast<void*>(d_out), static_cast<void*>(y_in),
                  static_cast<void*>(y_out), static_cast<void*>(barrier)})
    cudaFree(p);
}

// One replay of the captured chain with per-block timestamps (decode_trace.cuh), written as CSV.
void trace_graph(cudaStream_t s, const std::function<void(int)>& launch, const std::string& path) {
  cudaGraph_t graph;
  cudaGraphExec_t exec = capture(s, launch, &graph);
  for (int r = 0; r < 2; ++r) PCM_CUDA(cudaGraphLaunch(exec, s));  // warm-up
  const int64_t cap = 200000, words = 8 + cap * 8;
  unsigned long long* buf = nullptr;
  PCM_CUDA(cudaMalloc(reinterpret_cast<void**>(&buf), words * 8));
  std::vector<unsigned long long> host(static_cast<size_t>(words), 0);
  host[5] = static_cast<unsigned long long>(cap);
  PCM_CUDA(cudaMemcpy(buf, host.data(), 64, cudaMemcpyHostToDevice));
  PCM_CUDA(cudaStreamSynchronize(s));
  cuda::decode_trace(buf);
  PCM_CUDA(cudaGraphLaunch(exec, s));
  PCM_CUDA(cudaStreamSynchronize(s));
  cuda::decode_trace(nullptr);
  PCM_CUDA(cudaMemcpy(host.data(), buf, words * 8, cudaMemcpyDeviceToHost));
  cudaFree(buf);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fprintf(f, "kind,count,sm,tag,start,wait,ready,end\n");
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(host[4]), cap);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned long long* r = host.data() + 8 + i * 8;
    std::fprintf(f, "%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
  }
  std::fclose(f);
  std::printf("trace: %lld blocks -> %s\n", static_cast<long long>(n), path.c_str());
}

void run(const char* trace_dir, bool probe_only) {
  cudaStream_t s;
  PCM_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp prop{};
  PCM_CUDA(cudaGetDeviceProperties(&prop, 0));
  // Ceilings: copy 2 x 1 GiB (read + write counted), streaming read of the in_proj weights below.
  const int64_t copy_bytes = int64_t{1} << 30;
  uint8_t* ca = dev_alloc<uint8_t>(copy_bytes);
  uint8_t* cb = dev_alloc<uint8_t>(copy_bytes);
  PCM_CUDA(cudaMemset(ca, 0x3c, copy_bytes));
  // Not in a graph: a graph's memcpy node ran on the copy engines at 2.8 TB/s (H200), plain copies at 4.3.
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  PCM_CUDA(cudaMemcpyAsync(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice, s));
  PCM_CUDA(cudaEventRecord(e0, s));
  for (int i = 0; i < 10; ++i)
    PCM_CUDA(cudaMemcpyAsync(i % 2 ? ca : cb, i % 2 ? cb : ca, copy_bytes, cudaMemcpyDeviceToDevice, s));
  PCM_CUDA(cudaEventRecord(e1, s));
  PCM_CUDA(cudaEventSynchronize(e1));
  float copy_ms = 0;
  PCM_CUDA(cudaEventElapsedTime(&copy_ms, e0, e1));
  const double copy_us = copy_ms * 1e3 / 10;
  cudaFree(ca);
  cudaFree(cb);
  const double copy_gbs = 2.0 * copy_bytes / (copy_us * 1e-6) / 1e9;

  const int Lr = 8;  // layers rotated through: 1.2 GB of in_proj weights, far beyond L2
  std::vector<uint16_t*> w_in(Lr), w_out(Lr);
  for (int l = 0; l < Lr; ++l) {
    w_in[l] = dev_alloc<uint16_t>(kDpr * kD);
    w_out[l] = dev_alloc<uint16_t>(kD * kDi);
    fill_bf16(w_in[l], kDpr * kD, 0.02f, 100 + l);
    fill_bf16(w_out[l], kD * kDi, 0.02f, 200 + l);
  }
  float* sink = dev_alloc<float>(1);
  const double read_us = time_graph(s, [&](int i) { cuda::stream_read(sink, w_in[i % Lr], kDpr * kD * 2, s); });
  const double in_bytes = kDpr * kD * 2.0, out_bytes = kD * kDi * 2.0;
  const double read_gbs = in_bytes / (read_us * 1e-6) / 1e9;

  // One decode row: the fused kernels with the model's buffers.
  const int64_t maxB = 128;
  float* resid = dev_alloc<float>(4 * kD);
  float* norm_w = dev_alloc<float>(kD);
  float* zx = dev_alloc<float>(maxB * kDpr);
  float* xbc = dev_alloc<float>(maxB * kCd);
  float* dt = dev_alloc<float>(maxB * kH);
  float* y = dev_alloc<float>(maxB * kDi);
  float* conv = dev_alloc<float>(Lr * kCd * kK);
  float* conv_w = dev_alloc<float>(kCd * kK);
  float* conv_b = dev_alloc<float>(kCd);
  float* dt_bias = dev_alloc<float>(kH);
  float* A = dev_alloc<float>(kH);
  float* D = dev_alloc<float>(kH);
  float* gate_w = dev_alloc<float>(kDi);
  fill_f32(resid, 4 * kD, 1.0f, 1);
  fill_f32(norm_w, kD, 1.0f, 2);
  fill_f32(zx, maxB * kDpr, 1.0f, 3);
  fill_f32(xbc, maxB * kCd, 1.0f, 4);
  fill_f32(dt, maxB * kH, 0.05f, 5);
  fill_f32(y, maxB * kDi, 1.0f, 6);
  fill_f32(conv, Lr * kCd * kK, 1.0f, 7);
  fill_f32(conv_w, kCd * kK, 0.5f, 8);
  fill_f32(conv_b, kCd, 0.5f, 9);
  fill_f32(dt_bias, kH, 0.5f, 10);
  fill_f32(A, kH, 1.0f, 11);
  fill_f32(D, kH, 1.0f, 12);
  fill_f32(gate_w, kDi, 1.0f, 13);
  std::vector<int32_t> slot_ids(maxB), positions(maxB);  // positions in the conv rings: the rows spread over them
  for (int64_t b = 0; b < maxB; ++b) {
    slot_ids[b] = static_cast<int32_t>(b);
    positions[b] = static_cast<int32_t>(b % kK);
  }
  int32_t* slots = dev_alloc<int32_t>(maxB);
  int32_t* pos = dev_alloc<int32_t>(maxB);
  PCM_CUDA(cudaMemcpy(slots, slot_ids.data(), maxB * sizeof(int32_t), cudaMemcpyHostToDevice));
  PCM_CUDA(cudaMemcpy(pos, positions.data(), maxB * sizeof(int32_t), cudaMemcpyHostToDevice));
  cuda::decode_fused_prepare(kDi);
  const cuda::SsdDims dims{kH, kP, kG, kN};
  auto* queue = dev_alloc<unsigned long long>(1);  // in_proj's rows handed out at run time (the model's default)
  PCM_CUDA(cudaMemset(queue, 0, sizeof(unsigned long long)));
  bool fixed_rows = false;  // decode v17: the fixed share of rows per warp, for the comparison rows
  auto in_proj = [&](int l) {
    const cuda::DecodeInProjOut o{zx, kDpr, xbc, dt, nullptr, kDi, kCd, kH, conv + l * kCd * kK, Lr * kCd * kK,
                                  conv_w, conv_b, static_cast<int32_t>(kK), slots, pos, dt_bias, 1e-3f, 0.1f};
    cuda::decode_in_proj(o, resid, norm_w, 1e-5f, w_in[l], 1, kD, s, fixed_rows ? nullptr : queue);
  };
  float* ssq = dev_alloc<float>(maxB * kH);  // Σ g² per head, as the gated SSD step leaves it
  fill_f32(ssq, maxB * kH, 1.0f, 18);
  auto out_proj = [&](int l) {
    cuda::decode_out_proj(resid, nullptr, y, ssq, kH, gate_w, kDi / kG, 1e-5f, w_out[l], 1, kD, kDi, s);
  };

  // SSD state for Ls layers x maxB slots, fp32 (2 GiB at Ls = 4); bf16 uses the first half.
  const int Ls = 4;
  float* state = dev_alloc<float>(Ls * maxB * kHpn);
  fill_f32(state, Ls * maxB * kHpn, 0.5f, 14);
  auto ssd = [&](int l, int64_t B, bool bf16, bool gated = false) {
    void* st = bf16 ? static_cast<void*>(reinterpret_cast<uint16_t*>(state) + l * kHpn)
                    : static_cast<void*>(state + l * kHpn);
    cuda::ssd_decode(y, cuda::SsdIn{xbc, kCd, dt, A, D}, st, bf16, Ls * kHpn, dims, slots, B, s, {},
                     gated ? cuda::DecodeGate{zx, kDpr, ssq} : cuda::DecodeGate{});
  };
  const double state_bytes = kHpn * 4.0;
  auto layer = [&](int i, bool bf16) {  // the one-row layer chain
    in_proj(i % Lr);
    ssd(i % Ls, 1, bf16, /*gated=*/true);
    out_proj(i % Lr);
  };
  if (trace_dir) {
    for (bool fixed : {false, true})
      for (bool bf16 : {false, true}) {
        fixed_rows = fixed;
        trace_graph(s, [&](int i) { layer(i, bf16); },
            std::string(trace_dir) + (bf16 ? "/layer_bf16" : "/layer_fp32") + (fixed ? "_fixed.csv" : ".csv"));
      }
    return;
  }

  std::printf("device %s\n\n| kernel | µs per launch | GB/s | %% of copy |\n| --- | --- | --- | --- |\n", prop.name);
  row("copy 1 GiB (read + write)", copy_us, 2.0 * copy_bytes, copy_gbs);
  row("stream read, in_proj bytes", read_us, in_bytes, copy_gbs);
  row("in_proj fused, 1 row", time_graph(s, [&](int i) { in_proj(i % Lr); }), in_bytes, copy_gbs);
  fixed_rows = true;
  row("in_proj fused, 1 row, fixed rows per warp", time_graph(s, [&](int i) { in_proj(i % Lr); }), in_bytes, copy_gbs);
  for (bool bf16 : {false, true}) {
    char what[96];
    std::snprintf(what, sizeof what, "layer, 1 row, %s state, fixed rows per warp", bf16 ? "bf16" : "fp32");
    row(what, time_graph(s, [&](int i) { layer(i, bf16); }), in_bytes + out_bytes + 2 * state_bytes / (bf16 ? 2 : 1),
        copy_gbs);
  }
  fixed_rows = false;
  row("out_proj fused, 1 row", time_graph(s, [&](int i) { out_proj(i % Lr); }), out_bytes, copy_gbs);
  const double layer_us = time_graph(s, [&](int i) { layer(i, false); });
  std::pair<size_t, size_t> edges;
  const double layer_bf16_us = time_graph(s, [&](int i) { layer(i, true); }, &edges);
  row("layer (in_proj + SSD + out_proj), 1 row", layer_us, in_bytes + out_bytes + 2 * state_bytes, copy_gbs);
  char what_bf16[120];
  std::snprintf(what_bf16, sizeof what_bf16, "layer, 1 row, bf16 state (graph edges %zu, programmatic %zu)",
                edges.first, edges.second);
  row(what_bf16, layer_bf16_us, in_bytes + out_bytes + state_bytes, copy_gbs);
  row("in_proj + out_proj alone, 1 row", time_graph(s, [&](int i) {
        in_proj(i % Lr);
        out_proj(i % Lr);
      }),
      in_bytes + out_bytes, copy_gbs);
  probe_rows(s, w_in, w_out, in_bytes + out_bytes, copy_gbs);
  if (probe_only) return;
  for (bool bf16 : {false, true})
    for (int64_t B : {int64_t{1}, int64_t{16}, int64_t{64}, int64_t{128}}) {
      char what[64];
      std::snprintf(what, sizeof what, "SSD step B=%lld %s state", static_cast<long long>(B), bf16 ? "bf16" : "fp32");
      row(what, time_graph(s, [&](int i) { ssd(i % Ls, B, bf16); }), 2.0 * B * state_bytes / (bf16 ? 2 : 1),
          copy_gbs);
    }
  // The gated step (the model's at 1 to 4 rows: g = y silu(z) and Σ g² per head).
  for (bool bf16 : {false, true})
    for (int64_t B : {int64_t{1}, int64_t{64}, int64_t{128}}) {
      char what[80];
      std::snprintf(what, sizeof what, "SSD step gated B=%lld %s state", static_cast<long long>(B),
                    bf16 ? "bf16" : "fp32");
      row(what, time_graph(s, [&](int i) { ssd(i % Ls, B, bf16, true); }), 2.0 * B * state_bytes / (bf16 ? 2 : 1),
          copy_gbs);
    }
  // The projections above 4 rows (cuBLASLt; weights read once per step at any T).
  cuda::Gemm gemm;
  uint16_t* xn = dev_alloc<uint16_t>(maxB * kDi);
  fill_bf16(xn, maxB * kDi, 1.0f, 15);
  for (int64_t T : {int64_t{16}, int64_t{64}, int64_t{128}}) {
    char what[64];
    std::snprintf(what, sizeof what, "in_proj cuBLASLt T=%lld", static_cast<long long>(T));
    row(what, time_graph(s, [&](int i) { gemm.run(zx, xn, w_in[i % Lr], true, T, kDpr, kD, 0.0f, s); }), in_bytes,
        copy_gbs);
    std::snprintf(what, sizeof what, "out_proj cuBLASLt T=%lld (+= resid)", static_cast<long long>(T));
    row(what, time_graph(s, [&](int i) { gemm.run(y, xn, w_out[i % Lr], true, T, kD, kDi, 1.0f, s); }), out_bytes,
        copy_gbs);
  }
  // The heuristic's other algorithms for the same shapes (which one would beat its first choice); in_proj whole and
  // as the model runs it above 4 rows (decode v14): the xBC | dt columns, then z.
  struct Shape {
    const char* name;
    int64_t n, k;
    bool out;
  };
  for (int64_t T : {int64_t{16}, int64_t{64}, int64_t{128}})
    for (const Shape& sh : {Shape{"out_proj", kD, kDi, true}, Shape{"in_proj", kDpr, kD, false},
                            Shape{"in_proj xBC+dt", kCd + kH, kD, false}, Shape{"in_proj z", kDi, kD, false}}) {
      const int64_t n = sh.n, k = sh.k;
      const bool out = sh.out;
      const auto algos = gemm.algorithms(true, T, n, k, out);
      for (int a = 0; a < static_cast<int>(algos.size()); ++a) {
        gemm.use_algorithm(true, T, n, k, out, a);
        char what[160];
        std::snprintf(what, sizeof what, "%s algo %d T=%lld: %s", sh.name, a, static_cast<long long>(T),
                      algos[static_cast<size_t>(a)].c_str());
        row(what, time_graph(s, [&](int i) {
              gemm.run(out ? y : zx, xn, out ? w_out[i % Lr] : w_in[i % Lr], true, T, n, k, out ? 1.0f : 0.0f, s);
            }),
            2.0 * n * k, copy_gbs);
      }
      for (int a = 0; a < static_cast<int>(algos.size()); ++a)  // back to the production choice
        if (algos[static_cast<size_t>(a)].find("(chosen)") != std::string::npos) gemm.use_algorithm(true, T, n, k, out, a);
    }
  // Above the fused rows, one layer is seven launches: its small kernels alone, then the whole chain
  // (the model's order; fp32 state, dt's activation inside the SSD step).
  float* resid_rows = dev_alloc<float>(maxB * kD);
  float* conv_rows = dev_alloc<float>(Ls * maxB * kCd * kK);
  fill_f32(resid_rows, maxB * kD, 1.0f, 16);
  fill_f32(conv_rows, Ls * maxB * kCd * kK, 1.0f, 17);
  const int64_t conv_stride = Ls * kCd * kK;
  for (int64_t T : {int64_t{64}, int64_t{128}}) {
    char what[80];
    std::snprintf(what, sizeof what, "rmsnorm T=%lld", static_cast<long long>(T));
    row(what, time_graph(s, [&](int) { cuda::rmsnorm(xn, true, resid_rows, norm_w, T, kD, 1e-5f, s); }), T * kD * 6.0,
        copy_gbs);
    std::snprintf(what, sizeof what, "conv decode T=%lld", static_cast<long long>(T));
    row(what, time_graph(s, [&](int i) {
          cuda::conv1d_silu_decode(xbc, zx + kDi, kDpr, conv_rows + (i % Ls) * kCd * kK, conv_stride, conv_w, conv_b,
                                   slots, pos, T, kCd, kK, s);
        }),
        T * kCd * (kK + 2.0) * 4, copy_gbs);  // K - 1 taps read and one written, the input and the output
    std::snprintf(what, sizeof what, "gated rmsnorm T=%lld", static_cast<long long>(T));
    row(what, time_graph(s, [&](int) {
          cuda::gated_rmsnorm(xn, true, y, zx, kDpr, gate_w, T, kDi, kDi / kG, 1e-5f, s);
        }),
        T * kDi * 10.0, copy_gbs);
    // The model's chain above 4 rows (not gated: decode v10).
    for (bool bf16 : {false, true}) {
      std::snprintf(what, sizeof what, "layer unfused T=%lld %s state", static_cast<long long>(T),
                    bf16 ? "bf16" : "fp32");
      row(what, time_graph(s, [&](int i) {
            const int l = i % Ls;
            void* st = bf16 ? static_cast<void*>(reinterpret_cast<uint16_t*>(state) + l * kHpn)
                            : static_cast<void*>(state + l * kHpn);
            cuda::rmsnorm(xn, true, resid_rows, norm_w, T, kD, 1e-5f, s);
            gemm.run(zx, xn, w_in[i % Lr], true, T, kDpr, kD, 0.0f, s);
            cuda::conv1d_silu_decode(xbc, zx + kDi, kDpr, conv_rows + l * kCd * kK, conv_stride, conv_w, conv_b,
                                     slots, pos, T, kCd, kK, s);
            cuda::ssd_decode(y, cuda::SsdIn{xbc, kCd, dt, A, D}, st, bf16, Ls * kHpn, dims, slots, T, s,
                             cuda::RawDt{zx + kDi + kCd, kDpr, dt_bias, 1e-3f, 0.1f});
            cuda::gated_rmsnorm(xn, true, y, zx, kDpr, gate_w, T, kDi, kDi / kG, 1e-5f, s);
            gemm.run(resid_rows, xn, w_out[i % Lr], true, T, kD, kDi, 1.0f, s);
          }),
          in_bytes + out_bytes + 2.0 * T * (state_bytes / (bf16 ? 2 : 1) + kCd * kK * 4.0), copy_gbs);
    }
  }
  std::printf("\nread ceiling %.0f GB/s = %.0f%% of copy\n", read_gbs, 100.0 * read_gbs / copy_gbs);
}

}  // namespace
}  // namespace pcm

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // a run cut off by its time limit keeps the rows so far
  const char* trace_dir = argc == 3 && std::strcmp(argv[1], "--trace") == 0 ? argv[2] : nullptr;
  const bool probe_only = argc == 2 && std::strcmp(argv[1], "--probe") == 0;
  if (argc != 1 && !trace_dir && !probe_only) {
    std::fprintf(stderr, "usage: cuda_decode_kernels [--trace DIR | --probe]\n");
    return 2;
  }
  try {
    pcm::run(trace_dir, probe_only);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
#else
int main() {
  std::printf("built without CUDA\n");
  return 0;
}
#endif
