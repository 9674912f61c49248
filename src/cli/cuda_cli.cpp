#include "cli/cuda_cli.h"

#include "util/error.h"

#ifdef PCM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/common.h"
#include "kernels/cuda/cuda_check.h"
#include "model/model_cuda.h"
#include "util/memory_stats.h"
#endif

namespace pcm::cli {

#ifndef PCM_HAVE_CUDA

void run_cuda_generate(const CudaGenerateArgs&) { fail("--device cuda: this pcm was built without CUDA"); }
void run_cuda_bench(const CudaBenchArgs&) { fail("--device cuda: this pcm was built without CUDA"); }
std::vector<float> run_cuda_score(const std::string&, const std::vector<int32_t>&, int64_t*) {
  fail("--device cuda: this pcm was built without CUDA");
}

#else

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void run_cuda_generate(const CudaGenerateArgs& a) {
  PCM_CHECK(a.state_dtype == "fp32" || a.state_dtype == "bf16", "--state-dtype must be fp32 or bf16, got '{}'",
            a.state_dtype);
  PCM_CHECK(!a.prompt.empty(), "empty prompt: at least one token is needed");
  a.sampling.validate();
  CudaModelOptions o;
  o.fp32_weights = a.fp32_weights;
  o.bf16_state = a.state_dtype == "bf16";
  o.max_slots = 1;
  o.max_decode_batch = 1;
  o.max_prefill_seqs = 1;
  auto model = CudaMamba2Model::load(a.model_dir, o);
  const int64_t eos = a.ignore_eos ? -1 : model->config().eos_token_id;
  const int32_t slot = model->allocate_slot();
  std::vector<int32_t> out;
  double t0 = now_seconds();
  int32_t next = -1;
  std::string finish = "length";
  if (a.max_new_tokens > 0) {
    CudaPrefillRequest req{slot, a.prompt};
    model->prefill_sample(std::span(&req, 1), std::span(&a.sampling, 1), &next);
  } else {
    CudaPrefillRequest req{slot, a.prompt};
    model->prefill(std::span(&req, 1), nullptr);
  }
  const double prefill_s = now_seconds() - t0;
  t0 = now_seconds();
  while (static_cast<int64_t>(out.size()) < a.max_new_tokens) {
    out.push_back(next);
    if (next == eos) {
      finish = "stop";
      break;
    }
    if (static_cast<int64_t>(out.size()) == a.max_new_tokens) break;
    model->decode(std::span(&slot, 1), std::span(&next, 1), std::span(&a.sampling, 1), &next);
  }
  const double decode_s = now_seconds() - t0;
  std::printf("%s\n", join_ids(out).c_str());
  const double tps = out.size() > 1 ? static_cast<double>(out.size() - 1) / decode_s : 0.0;
  std::fprintf(stderr,
               "cuda: prompt %zu tokens in %.3f s (%.1f tok/s), generated %zu tokens (%.1f tok/s), finish: %s\n",
               a.prompt.size(), prefill_s, static_cast<double>(a.prompt.size()) / prefill_s, out.size(), tps,
               finish.c_str());
}

std::vector<float> run_cuda_score(const std::string& model_dir, const std::vector<int32_t>& ids, int64_t* vocab) {
  PCM_CHECK(!ids.empty(), "empty prompt: at least one token is needed");
  CudaModelOptions o;
  o.fp32_weights = true;
  o.max_slots = 1;
  o.max_decode_batch = 1;
  o.max_prefill_seqs = 1;
  o.cuda_graphs = false;
  auto model = CudaMamba2Model::load(model_dir, o);
  const int64_t V = model->config().vocab_size;
  *vocab = V;
  std::vector<float> logits(ids.size() * static_cast<size_t>(V));
  const int32_t slot = model->allocate_slot();
  for (size_t t = 0; t < ids.size(); ++t)
    model->decode_logits(std::span(&slot, 1), std::span(&ids[t], 1), logits.data() + t * static_cast<size_t>(V));
  return logits;
}

namespace {

// Device-to-device copy bandwidth (bytes read + bytes written per second), the decode roofline's ceiling.
double measure_copy_bandwidth() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  PCM_CUDA(cudaMalloc(&a, bytes));
  PCM_CUDA(cudaMalloc(&b, bytes));
  PCM_CUDA(cudaMemset(a, 0x3c, bytes));
  cudaEvent_t e0, e1;
  PCM_CUDA(cudaEventCreate(&e0));
  PCM_CUDA(cudaEventCreate(&e1));
  PCM_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  const int reps = 10;
  PCM_CUDA(cudaEventRecord(e0));
  for (int i = 0; i < reps; ++i) PCM_CUDA(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice));
  PCM_CUDA(cudaEventRecord(e1));
  PCM_CUDA(cudaEventSynchronize(e1));
  float ms = 0;
  PCM_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(bytes) * reps / (ms * 1e-3);
}

// The largest --cuda-batches' pool (a state at fp32, the larger, and a logits row per sequence) against what the GPU
// has free beside the model's bf16 weights, before anything is allocated: the pool's cudaMalloc would fail naming only
// its size.
void check_batches_fit_on_gpu(const Mamba2Config& c, int64_t max_b) {
  size_t free_b = 0, total_b = 0;
  PCM_CUDA(cudaMemGetInfo(&free_b, &total_b));
  const double room = static_cast<double>(free_b) - 2.0 * static_cast<double>(c.parameter_count());
  check_fits(fmt::format("--cuda-batches {}", max_b), max_b, bench_sequence_bytes(c), kBenchSequences, room,
             fmt::format("the {} this GPU has free beside the weights ({} of {})", human_bytes(std::max(room, 0.0)),
                         human_bytes(static_cast<double>(free_b)), human_bytes(static_cast<double>(total_b))));
}

std::vector<int32_t> pseudo_tokens(int64_t n, int64_t V, int64_t salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 13 + salt * 104729) % V);
  return t;
}

}  // namespace

void run_cuda_bench(const CudaBenchArgs& a) {
  PCM_CHECK(a.model_dir.empty() != a.shape.empty(), "give exactly one of --model DIR or --shape NAME");
  PCM_CHECK(!a.batches.empty() && !a.prefill_lengths.empty() && a.decode_steps > 0,
            "bench: batch sizes, prefill lengths and decode steps must be given");
  for (int64_t b : a.batches) PCM_CHECK(b > 0, "bench: batch sizes must be > 0");
  for (int64_t t : a.prefill_lengths) PCM_CHECK(t > 0, "bench: prefill lengths must be > 0");
  const int64_t max_b = *std::max_element(a.batches.begin(), a.batches.end());
  const int64_t max_t = *std::max_element(a.prefill_lengths.begin(), a.prefill_lengths.end());
  // known before anything is on the GPU
  const Mamba2Config shape = a.model_dir.empty() ? named_shape(a.shape, a.layers) : load_mamba2_config(a.model_dir);
  check_batches_fit_on_gpu(shape, max_b);
  CudaModelOptions o;
  o.max_slots = max_b;
  o.max_decode_batch = max_b;
  o.max_batch_tokens = std::min<int64_t>(max_t, 16384);
  o.max_prefill_seqs = 8;
  std::unique_ptr<CudaMamba2Model> model;
  std::string what;
  double t0 = now_seconds();
  if (!a.model_dir.empty()) {
    model = CudaMamba2Model::load(a.model_dir, o);
    what = a.model_dir;
  } else {
    model = CudaMamba2Model::random(shape, 1234, o);
    what = fmt::format("{} ({} layers, random bf16 weights drawn on the GPU)", a.shape, shape.num_layers);
  }
  const double load_s = now_seconds() - t0;
  const auto& c = model->config();
  const int64_t V = c.vocab_size;
  cudaDeviceProp prop{};
  PCM_CUDA(cudaGetDeviceProperties(&prop, o.device));
  const double bw = measure_copy_bandwidth();
  size_t peak = model->device_bytes_in_use();
  std::printf("%s", fmt::format("model   {} (loaded in {:.1f} s)\ndevice  {}, copy bandwidth {:.0f} GB/s (read + write)\n"
                                "weights {:.2f} GB bf16; per-sequence state {:.1f} MiB fp32 / {:.1f} MiB bf16\n{}",
                                what, load_s, prop.name, bw / 1e9, model->weight_bytes() / 1e9,
                                c.state_bytes(false) / 1048576.0, c.state_bytes(true) / 1048576.0,
                                model->options().decode_persistent
                                    ? "decode  at one row: one persistent launch for every layer (decode v27)\n"
                                    : "").c_str());
  // Prefill: one sequence of T tokens, host clock around the synchronous call; the median of 5 passes after a
  // warm-up pass of each length (as the Triton baseline's harness: a GPU measured cool, after a short warm-up only,
  // ran the codestral-7b T=16384 prefill ~5% faster, H200 2026-12-04; and the projections time their candidate
  // algorithms at the first product of each row bucket).
  std::printf("\n| prefill | tokens | ms | tok/s |\n| --- | --- | --- | --- |\n");
  {
    constexpr int kPrefillReps = 5;
    const int32_t slot = model->allocate_slot();
    std::vector<float> logits(static_cast<size_t>(V));
    auto pass = [&](const std::vector<int32_t>& prompt) {
      model->reset_slot(slot);
      CudaPrefillRequest r{slot, prompt};
      model->synchronize();
      const double start = now_seconds();
      model->prefill(std::span(&r, 1), logits.data());
      return now_seconds() - start;
    };
    for (int64_t T : a.prefill_lengths) pass(pseudo_tokens(T, V, 1));
    for (int64_t T : a.prefill_lengths) {
      const auto prompt = pseudo_tokens(T, V, T);
      std::vector<double> secs;
      for (int r = 0; r < kPrefillReps; ++r) secs.push_back(pass(prompt));
      std::sort(secs.begin(), secs.end());
      const double s = secs[kPrefillReps / 2];
      peak = std::max(peak, model->device_bytes_in_use());
      std::printf("| T=%lld | %lld | %.1f | %.0f |\n", static_cast<long long>(T), static_cast<long long>(T), s * 1e3,
                  static_cast<double>(T) / s);
    }
    model->free_slot(slot);
  }
  // Decode: B sequences, each with a short prompt already in its state, greedy sampling on the device.
  std::printf("\n| decode | state | ms/step | tok/s | roofline ms | %% of roofline |\n| --- | --- | --- | --- | --- | --- |\n");
  for (bool bf16_state : {false, true}) {
    model->resize_pool(max_b, bf16_state);
    std::vector<int32_t> slots;
    std::vector<std::vector<int32_t>> prompts;
    for (int64_t b = 0; b < max_b; ++b) {
      slots.push_back(model->allocate_slot());
      prompts.push_back(pseudo_tokens(32, V, b));
    }
    std::vector<CudaPrefillRequest> reqs;
    for (int64_t b = 0; b < max_b; ++b) reqs.push_back({slots[static_cast<size_t>(b)], prompts[static_cast<size_t>(b)]});
    model->prefill(reqs, nullptr);
    const double state_bytes = static_cast<double>(model->state_bytes_per_slot());
    for (int64_t B : a.batches) {
      std::vector<int32_t> s(slots.begin(), slots.begin() + B), tok(static_cast<size_t>(B)), ids(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) tok[static_cast<size_t>(b)] = static_cast<int32_t>((b * 31 + 7) % V);
      std::vector<SamplingParams> params(static_cast<size_t>(B));
      for (auto& p : params) p.temperature = 0.0f;
      for (int i = 0; i < 3; ++i) model->decode(s, tok, params, ids.data());  // capture + warm-up
      t0 = now_seconds();
      for (int64_t i = 0; i < a.decode_steps; ++i) {
        model->decode(s, tok, params, ids.data());
        tok = ids;
      }
      const double step = (now_seconds() - t0) / static_cast<double>(a.decode_steps);
      peak = std::max(peak, model->device_bytes_in_use());
      const double roof = (static_cast<double>(model->decode_weight_bytes()) + 2.0 * B * state_bytes) / bw;
      std::printf("| B=%lld | %s | %.2f | %.0f | %.2f | %.0f%% |\n", static_cast<long long>(B),
                  bf16_state ? "bf16" : "fp32", step * 1e3, static_cast<double>(B) / step, roof * 1e3,
                  100.0 * roof / step);
    }
  }
  std::printf("\npeak GPU memory in use: %.2f GiB (whole device, cudaMemGetInfo)\n", peak / 1073741824.0);
}

#endif

}  // namespace pcm::cli
