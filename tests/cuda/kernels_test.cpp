// Each CUDA kernel against the CPU reference (src/kernels/cpu) on fresh random inputs at the sizes of
// Mamba-Codestral-7B (d 4096, H 128, P 64, N 128, G 8, Q 256), outputs poisoned before every launch.
// Tolerances (METHOD.md): fp32 paths ~1e-5, bf16 operands 1e-2.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "cuda_test_util.h"
#include "engine/sampler.h"
#include "kernels/cpu/activations.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/dt_embedding.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/ssd.h"
#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/ops.h"
#include "model/conv_rings.h"
#include "util/error.h"

namespace pcm {
namespace {

using test::DeviceBuffer;
using test::error_of;
using test::rel_error;

constexpr int64_t kD = 4096, kH = 128, kP = 64, kN = 128, kG = 8, kQ = 256, kK = 4;
constexpr int64_t kDi = kH * kP, kCd = kDi + 2 * kG * kN;

TEST(CudaKernels, RmsNormFp32AndBf16) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(11);
  const int64_t T = 37;
  auto x_less = test::random_vec(T * kD, -3, 1, rng), w = test::random_vec(kD, 0.5, 1.5, rng), x = x_less;
  for (float& v : x) v += 1.0f;  // as add_bias computes it below
  std::vector<float> ref(x.size());
  cpu::rmsnorm_forward(ref.data(), x.data(), w.data(), T, kD, 1e-5f);
  DeviceBuffer<float> dx(x_less), ones(std::vector<float>(kD, 1.0f)), dw(w), out(x.size());
  DeviceBuffer<uint16_t> out16(x.size());
  out.poison();
  out16.poison();
  PCM_CUDA(cudaDeviceSynchronize());
  {
    // On a stream of its own the norm is launched with PDL right after a kernel that writes its input (x - 1 uploaded,
    // add_bias adds 1 in place): reading x before the wait would likely see x - 1.
    const test::TestStream s;
    cuda::add_bias(dx.get(), kD, ones.get(), T, kD, s.get());
    cuda::rmsnorm(out.get(), false, dx.get(), dw.get(), T, kD, 1e-5f, s.get());
    PCM_CUDA(cudaStreamSynchronize(s.get()));
  }
  cuda::rmsnorm(out16.get(), true, dx.get(), dw.get(), T, kD, 1e-5f, nullptr);
  auto got = out.download();
  auto got16 = test::bf16_bits_to_f32(out16.download());
  ASSERT_TRUE(test::all_finite(got) && test::all_finite(got16));
  EXPECT_LE(rel_error(got, ref), 1e-6);
  EXPECT_LE(rel_error(got16, ref), 5e-3);
}

// T rows with z a strided slice of row stride zs, like in_proj's output; fp32 and bf16 outputs.
void check_gated_rmsnorm(int64_t T, int64_t zs, uint32_t seed, int64_t groups = kG) {
  std::mt19937 rng(seed);
  auto y = test::random_vec(T * kDi, -2, 2, rng), z = test::random_vec(T * zs, -3, 3, rng);
  auto w = test::random_vec(kDi, 0.5, 1.5, rng);
  std::vector<float> ref(y.size());
  cpu::gated_rmsnorm_forward(ref.data(), y.data(), z.data(), zs, w.data(), T, kDi, kDi / groups, 1e-5f);
  DeviceBuffer<float> dy(y), dz(z), dw(w), out(y.size());
  DeviceBuffer<uint16_t> out16(y.size());
  out.poison();
  out16.poison();
  cuda::gated_rmsnorm(out.get(), false, dy.get(), dz.get(), zs, dw.get(), T, kDi, kDi / groups, 1e-5f, nullptr);
  cuda::gated_rmsnorm(out16.get(), true, dy.get(), dz.get(), zs, dw.get(), T, kDi, kDi / groups, 1e-5f, nullptr);
  auto got = out.download();
  auto got16 = test::bf16_bits_to_f32(out16.download());
  ASSERT_TRUE(test::all_finite(got) && test::all_finite(got16));
  EXPECT_LE(rel_error(got, ref), 1e-5);
  EXPECT_LE(rel_error(got16, ref), 5e-3);
  // bf16 inputs, against the reference of the rounded values: y (the SSD prefill of bf16 models writes it so), then
  // z too (a bf16 in_proj output), with fp32 and bf16 output (the warp kernel's 16-byte accesses where rows allow)
  const auto y_r = test::bf16_round(y), z_r = test::bf16_round(z);
  DeviceBuffer<uint16_t> dy16(test::bf16_bits(y)), dz16(test::bf16_bits(z));
  auto run_bf16 = [&](bool z_bf16, bool out_bf16) {
    cpu::gated_rmsnorm_forward(ref.data(), y_r.data(), z_bf16 ? z_r.data() : z.data(), zs, w.data(), T, kDi,
                               kDi / groups, 1e-5f);
    out.poison();
    out16.poison();
    cuda::gated_rmsnorm(out_bf16 ? static_cast<void*>(out16.get()) : out.get(), out_bf16, dy16.get(),
                        z_bf16 ? static_cast<const void*>(dz16.get()) : dz.get(), zs, dw.get(), T, kDi, kDi / groups,
                        1e-5f, nullptr, /*y_bf16=*/true, z_bf16);
    return out_bf16 ? test::bf16_bits_to_f32(out16.download()) : out.download();
  };
  struct Case {
    bool z_bf16, out_bf16;
    double tol;
  };
  for (const auto& [z_bf16, out_bf16, tol] :
       {Case{false, false, 1e-5}, Case{true, false, 1e-5}, Case{true, true, 5e-3}}) {
    const auto g = run_bf16(z_bf16, out_bf16);
    ASSERT_TRUE(test::all_finite(g));
    EXPECT_LE(rel_error(g, ref), tol) << "bf16 y" << (z_bf16 ? " and z" : "") << (out_bf16 ? ", bf16 output" : "");
  }
}

// 19 rows: a block per group; 130 rows with 16-byte aligned z rows: 16-byte loads over a block (decode at
// 128 rows); 260 rows: the warp-per-group (prefill) kernel.
TEST(CudaKernels, GatedRmsNormPerGroup) {
  PCM_REQUIRE_GPU();
  check_gated_rmsnorm(19, kDi + 77, 12);
  check_gated_rmsnorm(130, kDi + 2 * kG * kN + kH, 13);
  check_gated_rmsnorm(260, kDi + 2 * kG * kN + kH, 16);
  // Groups of 4096 (mamba2-1.3b's single group): 16-byte loads over a block, then unaligned z rows.
  check_gated_rmsnorm(70, kDi + 2 * kN + 64, 14, 2);
  check_gated_rmsnorm(19, kDi + 77, 15, 2);
}

class CudaGemm : public ::testing::TestWithParam<int64_t> {};

// T = 24 goes through cuBLASLt; T <= 4 through our own bf16 GEMV (fp32 still cuBLASLt).
TEST_P(CudaGemm, Bf16AndFp32) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(13 + static_cast<unsigned>(GetParam()));
  const int64_t T = GetParam(), n = 1000, k = kD;
  auto x = test::random_vec(T * k, -1, 1, rng), w = test::random_vec(n * k, -0.05f, 0.05f, rng);
  auto y0 = test::random_vec(T * n, -1, 1, rng);
  std::vector<float> ref(T * n);
  cpu::matmul_forward(ref.data(), x.data(), MatrixRef{w.data(), DType::F32, n, k}, nullptr, T);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += y0[i];  // beta = 1: the fused residual add
  cuda::Gemm gemm;
  DeviceBuffer<float> dx(x), dw(w), dy(y0);
  gemm.run(dy.get(), dx.get(), dw.get(), false, T, n, k, 1.0f, nullptr);
  EXPECT_LE(rel_error(dy.download(), ref), 1e-5);
  DeviceBuffer<uint16_t> dx16(test::bf16_bits(x)), dw16(test::bf16_bits(w));
  dy.upload(y0);
  gemm.run(dy.get(), dx16.get(), dw16.get(), true, T, n, k, 1.0f, nullptr);
  EXPECT_LE(rel_error(dy.download(), ref), 1e-2);
  dy.poison();
  gemm.run(dy.get(), dx16.get(), dw16.get(), true, T, n, k, 0.0f, nullptr);  // beta 0 ignores the poison
  std::vector<float> ref0(T * n);
  for (size_t i = 0; i < ref0.size(); ++i) ref0[i] = ref[i] - y0[i];
  EXPECT_LE(rel_error(dy.download(), ref0), 1e-2);
  // Out of place (C != Y, training's residual add): y0 stays, the sum lands in the poisoned output.
  DeviceBuffer<float> c(y0), out(T * n);
  for (const bool bf16 : {false, true}) {
    out.poison();
    gemm.run(out.get(), bf16 ? static_cast<const void*>(dx16.get()) : dx.get(),
             bf16 ? static_cast<const void*>(dw16.get()) : dw.get(), bf16, T, n, k, 1.0f, nullptr, c.get());
    EXPECT_LE(rel_error(out.download(), ref), bf16 ? 1e-2 : 1e-5) << (bf16 ? "bf16" : "fp32");
  }
  EXPECT_EQ(c.download(), y0);
  // bf16 output (the prefill's in_proj for bf16 models), every element written.
  DeviceBuffer<uint16_t> y16(T * n);
  y16.poison();
  gemm.run_bf16_out(y16.get(), dx16.get(), dw16.get(), T, n, k, nullptr);
  const auto got16 = test::bf16_bits_to_f32(y16.download());
  ASSERT_TRUE(test::all_finite(got16));
  EXPECT_LE(rel_error(got16, ref0), 1e-2) << "bf16 output";
}
// T = 2100: a prefill-sized product, timed at first use (the accumulating one with its output saved and restored
// around each candidate: the residual must be added once).
INSTANTIATE_TEST_SUITE_P(Rows, CudaGemm, ::testing::Values(1, 3, 4, 24, 2100));

// PCM_GEMM_TUNE's values, host-side (no GPU needed): unset is on, 0 / 1 / 2, anything else an error naming it.
TEST(CudaKernelsInputs, GemmTuneModeFromTheEnvironment) {
  EXPECT_EQ(cuda::gemm_tune_mode(nullptr), 1);
  EXPECT_EQ(cuda::gemm_tune_mode("0"), 0);
  EXPECT_EQ(cuda::gemm_tune_mode("1"), 1);
  EXPECT_EQ(cuda::gemm_tune_mode("2"), 2);
  for (const char* bad : {"", "yes", "3", "1 ", "-1"})
    EXPECT_NE(error_of([&] { cuda::gemm_tune_mode(bad); }).find("PCM_GEMM_TUNE must be 0 (off), 1 (on) or 2"),
              std::string::npos)
        << "'" << bad << "'";
}

// Prefill-sized bf16 products pick their algorithm by timing at the first product of each power-of-two row bucket
// and reuse it for the bucket's other row counts: the results are those of a Gemm that does not time (same bits),
// in place (residual added once) and with bf16 output, for the timed row count and for another of its bucket.
TEST(CudaGemmTuning, RowBucketPickKeepsTheBits) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(77);
  const int64_t maxT = 3000, n = 256, k = 512;
  const auto x = test::bf16_round(test::random_vec(maxT * k, -1, 1, rng));
  const auto w = test::bf16_round(test::random_vec(n * k, -0.05f, 0.05f, rng));
  const auto y0 = test::random_vec(maxT * n, -1, 1, rng);
  DeviceBuffer<uint16_t> dx(test::bf16_bits(x)), dw(test::bf16_bits(w));
  const char* env = std::getenv("PCM_GEMM_TUNE");  // Gemm reads it when constructed; the runner's value comes back
  const std::string saved = env ? env : "";
  ::setenv("PCM_GEMM_TUNE", "1", 1);
  cuda::Gemm timed;
  ::setenv("PCM_GEMM_TUNE", "0", 1);
  cuda::Gemm plain;
  if (env) ::setenv("PCM_GEMM_TUNE", saved.c_str(), 1);
  else ::unsetenv("PCM_GEMM_TUNE");
  for (const int64_t T : {int64_t{2100}, int64_t{3000}, int64_t{2100}}) {  // 2100 timed, 3000 reuses, 2100 cached
    std::vector<float> got[2];
    std::vector<uint16_t> got16[2];
    for (int g = 0; g < 2; ++g) {
      cuda::Gemm& gemm = g ? plain : timed;
      DeviceBuffer<float> dy(std::vector<float>(y0.begin(), y0.begin() + T * n));
      gemm.run(dy.get(), dx.get(), dw.get(), true, T, n, k, 1.0f, nullptr);
      got[g] = dy.download();
      DeviceBuffer<uint16_t> y16(T * n);
      y16.poison();
      gemm.run_bf16_out(y16.get(), dx.get(), dw.get(), T, n, k, nullptr);
      got16[g] = y16.download();
    }
    EXPECT_EQ(got[0], got[1]) << "T=" << T << ": accumulated in place";
    EXPECT_EQ(got16[0], got16[1]) << "T=" << T << ": bf16 output";
    // and the untimed result is the product (the residual added once)
    std::vector<float> ref(T * n);
    cpu::matmul_forward(ref.data(), x.data(), MatrixRef{w.data(), DType::F32, n, k}, nullptr, T);
    for (int64_t i = 0; i < T * n; ++i) ref[i] += y0[i];
    EXPECT_LE(rel_error(got[0], ref), 1e-5) << "T=" << T;
  }
}

// What a conv prefill leaves behind for a decode after it: the weights, and the windows after the prefill
// (the CPU reference's on the host in time order, the kernel's rings on the device; each slot's position in its ring).
struct ConvPrefill {
  std::vector<float> w, b, ref_windows;
  std::unique_ptr<DeviceBuffer<float>> dw, db, dwin;
  std::vector<int32_t> slot_pos;
};

// Slots' [C, K] windows in time order as the device's rings after slot_pos[s] tokens (to_rings), or back.
std::vector<float> windows_as_rings(const std::vector<float>& from, const std::vector<int32_t>& slot_pos,
                                    bool to_rings) {
  std::vector<float> to(from.size());
  const size_t n = kCd * kK;  // one slot's window
  for (size_t s = 0; s < slot_pos.size(); ++s)
    conv_windows_as_rings(std::span(from).subspan(s * n, n), std::span(to).subspan(s * n, n), 1, kCd, kK, slot_pos[s],
                          to_rings);
  return to;
}

// Packed prefill of sequences of lengths `lens` in stride-`stride` rows, sequence s in conv window
// seq_slot[s] (default: slots 0..n-1 reversed), each continuing from its own random window at a random ring
// position; checks the output and the windows against the CPU. in_stride % 4 == 0 takes the float4 kernel (runs of 16
// rows across sequence edges).
// bf16_cols > 0: the first bf16_cols columns also go to a bf16 output (the SSD's bf16 x and B) and only columns from
// fp32_from to the fp32 one: every bf16 element written, within bf16 rounding of the reference, and the fp32 output's
// columns below fp32_from left alone.
// in_bf16: the input in bf16 (a bf16 in_proj output); the reference then convolves the rounded input.
void check_conv_prefill(const std::vector<int32_t>& lens, int64_t stride, std::mt19937& rng,
                        std::vector<int32_t> seq_slot = {}, ConvPrefill* keep = nullptr, int64_t bf16_cols = 0,
                        int64_t fp32_from = 0, bool in_bf16 = false) {
  int64_t T = 0;
  for (int32_t len : lens) T += len;
  if (seq_slot.empty())
    for (size_t s = 0; s < lens.size(); ++s) seq_slot.push_back(static_cast<int32_t>(lens.size() - 1 - s));
  const int64_t slots = *std::max_element(seq_slot.begin(), seq_slot.end()) + 1;
  auto in = test::random_vec(T * stride, -2, 2, rng);
  if (in_bf16) in = test::bf16_round(in);
  auto w = test::random_vec(kCd * kK, -0.5, 0.5, rng), b = test::random_vec(kCd, -0.5, 0.5, rng);
  auto windows = test::random_vec(slots * kCd * kK, -1, 1, rng);
  std::vector<int32_t> slot_pos(static_cast<size_t>(slots)), seq_pos;
  for (auto& p : slot_pos) p = static_cast<int32_t>(rng() % kK);
  std::vector<float> ref(T * kCd), ref_windows = windows;
  std::vector<int32_t> seq_start = {0}, row_seq;
  for (size_t s = 0; s < lens.size(); ++s) {
    seq_pos.push_back(slot_pos[seq_slot[s]]);
    cpu::conv1d_silu_forward(ref.data() + seq_start.back() * kCd, in.data() + seq_start.back() * stride, stride,
                             ref_windows.data() + seq_slot[s] * kCd * kK, w.data(), b.data(), lens[s], kCd, kK);
    for (int i = 0; i < lens[s]; ++i) row_seq.push_back(static_cast<int32_t>(s));
    seq_start.push_back(seq_start.back() + lens[s]);
  }
  auto dw = std::make_unique<DeviceBuffer<float>>(w), db = std::make_unique<DeviceBuffer<float>>(b);
  auto dwin = std::make_unique<DeviceBuffer<float>>(windows_as_rings(windows, slot_pos, true));
  DeviceBuffer<float> din(in), out(T * kCd);
  const auto in16 = test::bf16_bits(in);
  DeviceBuffer<uint16_t> din16(in16);
  DeviceBuffer<int32_t> dstart(seq_start), dslot(seq_slot), drow(row_seq), dpos(seq_pos);
  DeviceBuffer<uint16_t> out16(static_cast<size_t>(std::max<int64_t>(T * bf16_cols, 1)));
  out.poison();
  out16.poison();
  cuda::conv1d_silu_prefill(out.get(), in_bf16 ? static_cast<const void*>(din16.get()) : din.get(), stride, dwin->get(),
                            kCd * kK, dw->get(), db->get(), T, kCd, kK,
                            cuda::PackedSeqs{static_cast<int32_t>(lens.size()), dstart.get(), dslot.get(), drow.get(),
                                             dpos.get()},
                            nullptr,
                            cuda::ConvBf16{bf16_cols ? out16.get() : nullptr, bf16_cols, fp32_from, in_bf16});
  auto got = out.download();
  if (bf16_cols) {
    const auto got16 = out16.download();
    std::vector<float> got_x, ref_x, got_rest, ref_rest;
    int64_t touched = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < kCd; ++c) {
        const float r = ref[t * kCd + c], g = got[t * kCd + c];
        if (c < bf16_cols) {
          got_x.push_back(bf16_to_f32(got16[t * bf16_cols + c]));
          ref_x.push_back(r);
        }
        if (c < fp32_from) {
          touched += !std::isnan(g);  // poisoned: NaN unless written
        } else {
          got_rest.push_back(g);
          ref_rest.push_back(r);
        }
      }
    ASSERT_TRUE(test::all_finite(got_x));
    EXPECT_LE(rel_error(got_x, ref_x), 4e-3);
    EXPECT_EQ(touched, 0) << "fp32 columns written although they went to bf16";
    got = got_rest;
    ref = ref_rest;
  }
  ASSERT_TRUE(test::all_finite(got));
  EXPECT_LE(rel_error(got, ref), 1e-6);
  for (size_t s = 0; s < lens.size(); ++s) slot_pos[seq_slot[s]] = (slot_pos[seq_slot[s]] + lens[s]) % kK;
  EXPECT_EQ(windows_as_rings(dwin->download(), slot_pos, false), ref_windows);
  if (keep) *keep = ConvPrefill{std::move(w), std::move(b), std::move(ref_windows), std::move(dw), std::move(db),
                                std::move(dwin), std::move(slot_pos)};
}

TEST(CudaKernels, Conv1dPrefillFloat4Runs) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng41(41), rng42(42);
  check_conv_prefill({300, 2, 45, 1, 17, 3, 64}, kCd + 12, rng41);
  check_conv_prefill({5}, kCd, rng42);
}

// dt's activation from fp32 raw values and from bf16 ones (a bf16 in_proj output), against the CPU on the same values.
TEST(CudaKernels, DtSoftplusFp32AndBf16Raw) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(44);
  const int64_t T = 300, stride = kH + 37;
  const float lo = 1e-4f, hi = 0.5f;
  auto raw = test::bf16_round(test::random_vec(T * stride, -6, 4, rng));
  auto bias = test::random_vec(kH, -1, 1, rng);
  std::vector<float> ref(T * kH);
  cpu::dt_softplus_forward(ref.data(), raw.data(), stride, bias.data(), T, kH, lo, hi);
  const auto raw16 = test::bf16_bits(raw);
  DeviceBuffer<float> draw(raw), dbias(bias), dt(T * kH);
  DeviceBuffer<uint16_t> draw16(raw16);
  for (const bool bf16 : {false, true}) {
    dt.poison();
    cuda::dt_softplus(dt.get(), bf16 ? static_cast<const void*>(draw16.get()) : draw.get(), stride, dbias.get(), T, kH,
                      lo, hi, nullptr, bf16);
    const auto got = dt.download();
    ASSERT_TRUE(test::all_finite(got));
    EXPECT_LE(rel_error(got, ref), 1e-6) << (bf16 ? "bf16 raw" : "fp32 raw");
  }
}

// x, B and C in bf16 for the SSD (bf16 models; x only there, B and C in both): from the float4 kernel and from the
// generic one (odd stride, x and B); x alone in bf16.
TEST(CudaKernels, Conv1dPrefillBf16X) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(43);
  check_conv_prefill({300, 2, 45}, kCd + 12, rng, {}, nullptr, kCd, kDi);
  check_conv_prefill({17, 64}, kCd + 3, rng, {}, nullptr, kDi + kG * kN, kDi);
  check_conv_prefill({40, 9}, kCd + 12, rng, {}, nullptr, kDi, kDi);
  // the input in bf16 as well (the prefill with a bf16 in_proj): the 16-byte kernel (8 channels per thread, stride
  // a multiple of 8) with all or only x in bf16, and the generic one (stride 4 or 3 past a multiple of 8)
  check_conv_prefill({300, 2, 45}, kCd + 16, rng, {}, nullptr, kCd, kDi, true);
  check_conv_prefill({40, 9, 3}, kCd + 8, rng, {}, nullptr, kDi, kDi, true);
  check_conv_prefill({300, 2, 45}, kCd + 12, rng, {}, nullptr, kCd, kDi, true);
  check_conv_prefill({17, 64}, kCd + 3, rng, {}, nullptr, kCd, kDi, true);
  // bf16 input with every column in fp32 (the bf16 training's conv), with a bf16 copy of every column (its forward)
  // and without (its recompute under --recompute): the staged kernel in 8-byte words of 4 channels, and the generic
  // one (stride 3 past a multiple of 4)
  check_conv_prefill({300, 2, 45}, kCd + 16, rng, {}, nullptr, kCd, 0, true);
  check_conv_prefill({300, 2, 45, 1}, kCd + 4, rng, {}, nullptr, 0, 0, true);
  check_conv_prefill({40, 9, 3}, kCd + 3, rng, {}, nullptr, 0, 0, true);
}

void check_conv_prefill_then_decode(int64_t stride) {
  std::mt19937 rng(14);
  ConvPrefill p;
  ASSERT_NO_FATAL_FAILURE(check_conv_prefill({300, 2, 45}, stride, rng, {3, 0, 4}, &p));
  // Decode: one token for slots 4 and 1 (row 2 is padding), each at its slot's position.
  const std::vector<int32_t> dec_slots = {4, 1, -1}, dec_pos = {p.slot_pos[4], p.slot_pos[1], 0};
  // On a stream of its own the decode is launched with PDL, right after a kernel that writes its input: x - 1 is
  // uploaded and add_bias adds 1 in place, so reading x before the wait would likely see x - 1 (a check, not a proof:
  // the race window is add_bias's run).
  auto x_less = test::random_vec(3 * stride, -3, 1, rng), x = x_less;
  for (float& v : x) v += 1.0f;  // as add_bias computes it
  std::vector<float> ref_dec(3 * kCd, 0.0f);
  for (int r = 0; r < 2; ++r)
    cpu::conv1d_silu_forward(ref_dec.data() + r * kCd, x.data() + r * stride, stride,
                             p.ref_windows.data() + dec_slots[r] * kCd * kK, p.w.data(), p.b.data(), 1, kCd, kK);
  DeviceBuffer<float> dx(x_less), ones(std::vector<float>(stride, 1.0f)), dout(3 * kCd);
  DeviceBuffer<int32_t> dds(dec_slots), ddp(dec_pos);
  dout.poison();
  PCM_CUDA(cudaDeviceSynchronize());
  const test::TestStream s;
  cuda::add_bias(dx.get(), stride, ones.get(), 3, stride, s.get());
  cuda::conv1d_silu_decode(dout.get(), dx.get(), stride, p.dwin->get(), kCd * kK, p.dw->get(), p.db->get(),
                           dds.get(), ddp.get(), 3, kCd, kK, s.get());
  EXPECT_LE(rel_error(dout.download(), ref_dec), 1e-6);
  for (int r = 0; r < 2; ++r) p.slot_pos[dec_slots[r]] = (p.slot_pos[dec_slots[r]] + 1) % kK;
  EXPECT_EQ(windows_as_rings(p.dwin->download(), p.slot_pos, false), p.ref_windows);
}

// Three packed sequences of different lengths in slots 3, 0, 4 of 5, then a decode step from their windows: rows of
// stride 3 past a multiple of 4 (the kernel of any K) and of a multiple of 4 (K = 4 in 16-byte words).
TEST(CudaKernels, Conv1dPrefillPackedAndDecode) {
  PCM_REQUIRE_GPU();
  for (const int64_t stride : {kCd + 11, kCd + 12}) {
    SCOPED_TRACE(stride);
    check_conv_prefill_then_decode(stride);
  }
}

struct SsdCase {
  std::vector<float> xbc, dt, A, D;
};

SsdCase random_ssd_inputs(int64_t T, std::mt19937& rng) {
  SsdCase c;
  c.xbc = test::random_vec(T * kCd, -1, 1, rng);
  c.dt = test::random_vec(T * kH, 1e-3f, 0.2f, rng);
  c.A = test::random_vec(kH, -8.0f, -0.5f, rng);
  c.D = test::random_vec(kH, 0.5f, 1.5f, rng);
  return c;
}

// Packed prefill of sequences that are and are not multiples of Q, each from a random initial state,
// against the CPU chunked form; fp32 and bf16 states. lens[s] rows of sequence s go to slot seq_slot[s].
// twice: run again from the same states and expect the same bits (a race in the state handoff would move them).
// bf16_x: x, B and C in bf16 as well, as the conv writes them for bf16 models (xbc is all NaN then, so that
// a read of them shows): the bf16 chunk states and outputs, y in bf16.
// y_fp32: y stays fp32 with x in bf16 (the training forward).
void check_ssd_chunked(bool bf16_state, bool tf32, const std::vector<int32_t>& lens = {300, 1, 512, 77},
                       const std::vector<int32_t>& seq_slot = {2, 0, 3, 1}, uint32_t seed = 0, bool twice = false,
                       bool bf16_x = false, bool y_fp32 = false) {
  std::mt19937 rng(seed ? seed : bf16_state ? 16 : 15);
  int64_t T = 0;
  for (int32_t l : lens) T += l;
  const int64_t slots = static_cast<int64_t>(lens.size()), hpn = kH * kP * kN;
  SsdCase in = random_ssd_inputs(T, rng);
  auto states = test::random_vec(slots * hpn, -0.5f, 0.5f, rng);
  if (bf16_state) states = test::bf16_round(states);
  const cpu::SsdShape shape{kH, kP, kG, kN};
  std::vector<float> ref(T * kDi), ref_states = states;
  std::vector<float> scratch(static_cast<size_t>(cpu::ssd_chunked_scratch_floats(kQ, shape)));
  std::vector<int32_t> chunk_start, chunk_len, seq_chunk;
  int64_t row = 0;
  for (size_t s = 0; s < lens.size(); ++s) {
    const float* x = in.xbc.data() + row * kCd;
    cpu::SsdInputs ci{x, x + kDi, x + kDi + kG * kN, kCd, in.dt.data() + row * kH, in.A.data(), in.D.data()};
    cpu::ssd_chunked_forward(ref.data() + row * kDi, ci, ref_states.data() + seq_slot[s] * hpn, lens[s], kQ, shape,
                             scratch.data());
    seq_chunk.push_back(static_cast<int32_t>(chunk_start.size()));
    for (int q0 = 0; q0 < lens[s]; q0 += kQ) {
      chunk_start.push_back(static_cast<int32_t>(row + q0));
      chunk_len.push_back(std::min<int32_t>(kQ, lens[s] - q0));
    }
    row += lens[s];
  }
  seq_chunk.push_back(static_cast<int32_t>(chunk_start.size()));
  const cuda::SsdDims dims{kH, kP, kG, kN};
  const int32_t chunks = static_cast<int32_t>(chunk_start.size());
  DeviceBuffer<float> dx(in.xbc), ddt(in.dt), dA(in.A), dD(in.D), y(T * kDi);
  DeviceBuffer<float> scr(static_cast<size_t>(cuda::ssd_chunked_scratch_floats(chunks, kQ, dims)));
  DeviceBuffer<int32_t> dcs(chunk_start), dcl(chunk_len), dsc(seq_chunk), dslot(seq_slot);
  DeviceBuffer<float> st32(states);
  const auto st16h = test::bf16_bits(states);
  DeviceBuffer<uint16_t> st16(st16h);
  const int64_t xb = kCd;  // x, B and C in bf16, as the conv writes them
  std::vector<uint16_t> x16h(static_cast<size_t>(T * xb));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < xb; ++c) x16h[t * xb + c] = f32_to_bf16(in.xbc[t * kCd + c]);
  DeviceBuffer<uint16_t> x16(x16h);
  cuda::SsdIn ssd_in{dx.get(), kCd, ddt.get(), dA.get(), dD.get()};
  if (bf16_x) {
    auto xbc_nan = in.xbc;
    for (int64_t t = 0; t < T; ++t)
      std::fill_n(xbc_nan.begin() + t * kCd, kCd, std::numeric_limits<float>::quiet_NaN());
    dx.upload(xbc_nan);
    ssd_in.xbc_bf16 = x16.get();
    ssd_in.bf16_stride = xb;
    ssd_in.y_fp32 = y_fp32;
  }
  auto run = [&] {
    y.poison();
    scr.poison();
    cuda::ssd_chunked(y.get(), ssd_in,
                      bf16_state ? static_cast<void*>(st16.get()) : st32.get(), bf16_state, hpn, dims,
                      cuda::ChunkTable{chunks, kQ, dcs.get(), dcl.get(), dsc.get()}, dslot.get(),
                      static_cast<int32_t>(lens.size()), scr.get(), tf32, nullptr);
    auto got_y = y.download();
    if (bf16_x && !y_fp32) {  // y in bf16: the first T·kDi halves of the buffer
      std::vector<uint16_t> y16(static_cast<size_t>(T * kDi));
      std::memcpy(y16.data(), got_y.data(), y16.size() * sizeof(uint16_t));
      got_y = test::bf16_bits_to_f32(y16);
    }
    return std::make_pair(got_y, bf16_state ? test::bf16_bits_to_f32(st16.download()) : st32.download());
  };
  const auto [got, got_states] = run();
  ASSERT_TRUE(test::all_finite(got));
  const double tol = bf16_state || bf16_x ? 1e-2 : tf32 ? 3e-3 : 1e-5;
  EXPECT_LE(rel_error(got, ref), tol);
  EXPECT_LE(rel_error(got_states, ref_states), tol);
  if (!twice) return;
  st32.upload(states);
  st16.upload(st16h);
  const auto [again, again_states] = run();
  EXPECT_EQ(again, got);
  EXPECT_EQ(again_states, got_states);
}

TEST(CudaKernels, SsdChunkedPackedFp32State) {
  PCM_REQUIRE_GPU();
  check_ssd_chunked(false, false);
}
TEST(CudaKernels, SsdChunkedPackedFp32StateTf32) {
  PCM_REQUIRE_GPU();
  check_ssd_chunked(false, true);
}
TEST(CudaKernels, SsdChunkedPackedBf16StateTf32) {
  PCM_REQUIRE_GPU();
  check_ssd_chunked(true, true);
}
// The tensor-core path's edges: whole chunks, 16-row tile edges inside a chunk, one row, a sequence of many
// chunks, in a packed order that is not the slot order.
TEST(CudaKernels, SsdChunkedPackedTileEdgesTf32) {
  PCM_REQUIRE_GPU();
  const std::vector<int32_t> lens = {256, 17, 1000, 16, 255, 1, 33};
  const std::vector<int32_t> slots = {4, 1, 0, 6, 3, 2, 5};
  check_ssd_chunked(false, true, lens, slots, 21);
  check_ssd_chunked(true, true, lens, slots, 22);
}
// The state handoff between the chunk states' blocks (ssd_state_pass.cuh): sequences of many chunks (up to 13, more
// blocks than fit on the GPU at once, so chains cross waves), single-chunk and one-row sequences between them,
// random initial states in slots out of order; twice from the same states, same bits.
TEST(CudaKernels, SsdChunkedPackedHandoffTf32) {
  PCM_REQUIRE_GPU();
  const std::vector<int32_t> lens = {3300, 1, 700, 2048, 256, 1500, 17};
  const std::vector<int32_t> slots = {5, 2, 6, 0, 3, 1, 4};
  check_ssd_chunked(false, true, lens, slots, 23, true);
  check_ssd_chunked(true, true, lens, slots, 24, true);
}

// x as bf16 (chunk states from it, chunk outputs on bf16 mma): the edges of the TF32 test, chains across waves, both
// state dtypes, twice the same bits.
// Bad bf16 inputs to the SSD and the conv are refused on the host, before any launch, with a message that names what
// is wrong (no GPU needed: nothing is dereferenced).
TEST(CudaKernelsInputs, SsdBf16InputsRefusedWithTheReason) {
  auto* fake = reinterpret_cast<float*>(uintptr_t{1} << 20);  // 16-byte aligned, never read
  const int32_t* ints = reinterpret_cast<const int32_t*>(fake);
  const cuda::ChunkTable ct{1, static_cast<int32_t>(kQ), ints, ints, ints};
  auto run = [&](cuda::SsdDims d, bool tf32, const void* xbc16, int64_t stride16) {
    cuda::SsdIn in{fake, kCd, fake, fake, fake};
    in.xbc_bf16 = xbc16;
    in.bf16_stride = stride16;
    return error_of([&] { cuda::ssd_chunked(fake, in, fake, false, 0, d, ct, ints, 1, fake, tf32, nullptr); });
  };
  const cuda::SsdDims codestral{kH, kP, kG, kN}, other{kH, 32, kG, kN};
  const void* aligned = fake;
  const void* misaligned = reinterpret_cast<const uint16_t*>(fake) + 2;
  EXPECT_NE(run(codestral, false, aligned, kCd).find("only on the tensor-core path"), std::string::npos)
      << "exact fp32: " << run(codestral, false, aligned, kCd);
  EXPECT_NE(run(other, true, aligned, kCd).find("only on the tensor-core path"), std::string::npos)
      << "P = 32: " << run(other, true, aligned, kCd);
  EXPECT_NE(run(codestral, true, misaligned, kCd).find("16-byte aligned rows"), std::string::npos)
      << run(codestral, true, misaligned, kCd);
  EXPECT_NE(run(codestral, true, aligned, kCd + 2).find("16-byte aligned rows (stride"), std::string::npos)
      << run(codestral, true, aligned, kCd + 2);
}

TEST(CudaKernelsInputs, ConvBf16putOutsideTheColumnsRefused) {
  auto* fake = reinterpret_cast<float*>(uintptr_t{1} << 20);
  const int32_t* ints = reinterpret_cast<const int32_t*>(fake);
  const cuda::PackedSeqs seqs{1, ints, ints, ints};
  auto run = [&](int64_t cols, int64_t fp32_from) {
    return error_of([&] {
      cuda::conv1d_silu_prefill(fake, fake, kCd, fake, kCd * kK, fake, fake, 16, kCd, kK, seqs, nullptr,
                                cuda::ConvBf16{fake, cols, fp32_from});
    });
  };
  EXPECT_NE(run(kCd + 4, kDi).find("bf16 output of 10244 of 10240 columns"), std::string::npos) << run(kCd + 4, kDi);
  EXPECT_NE(run(kDi, kDi + 4).find("bf16 output of 8192 of 10240 columns, fp32 from column 8196"), std::string::npos)
      << run(kDi, kDi + 4);
  EXPECT_NE(run(0, 0).find("bf16 output of 0 of 10240"), std::string::npos) << run(0, 0);
}

TEST(CudaKernels, SsdChunkedPackedBf16X) {
  PCM_REQUIRE_GPU();
  check_ssd_chunked(false, true, {300, 1, 512, 77}, {2, 0, 3, 1}, 25, false, true);
  check_ssd_chunked(false, true, {300, 1, 512, 77}, {2, 0, 3, 1}, 29, false, true, true);  // y in fp32 (training)
}
TEST(CudaKernels, SsdChunkedPackedBf16XEdges) {
  PCM_REQUIRE_GPU();
  const std::vector<int32_t> lens = {256, 17, 1000, 16, 255, 1, 33, 3300};
  const std::vector<int32_t> slots = {4, 1, 0, 6, 3, 2, 5, 7};
  check_ssd_chunked(false, true, lens, slots, 26, true, true);
  check_ssd_chunked(true, true, lens, slots, 27, true, true);
}

// Bn = 5 takes the small-grid launch (16 warps per head), Bn = 9 the large-grid one.
void check_ssd_decode(bool bf16_state, int64_t Bn) {
  std::mt19937 rng((bf16_state ? 18 : 17) + static_cast<unsigned>(Bn));
  const int64_t slots = 10, hpn = kH * kP * kN;
  std::vector<int32_t> dec_slots = {5, 0, -1, 2, 3, 9, 1, -1, 7};
  dec_slots.resize(static_cast<size_t>(Bn));
  SsdCase in = random_ssd_inputs(Bn, rng);
  auto states = test::random_vec(slots * hpn, -0.5f, 0.5f, rng);
  if (bf16_state) states = test::bf16_round(states);
  std::vector<float> ref(Bn * kDi, 0.0f), ref_states = states;
  const cpu::SsdShape shape{kH, kP, kG, kN};
  for (int64_t b = 0; b < Bn; ++b) {
    if (dec_slots[b] < 0) continue;
    const float* x = in.xbc.data() + b * kCd;
    cpu::SsdInputs ci{x, x + kDi, x + kDi + kG * kN, kCd, in.dt.data() + b * kH, in.A.data(), in.D.data()};
    cpu::ssd_recurrent_forward(ref.data() + b * kDi, ci, ref_states.data() + dec_slots[b] * hpn, 1, shape);
  }
  const cuda::SsdDims dims{kH, kP, kG, kN};
  DeviceBuffer<float> dx(in.xbc), ddt(in.dt), dA(in.A), dD(in.D), y(Bn * kDi), st32(states);
  const auto st16h = test::bf16_bits(states);
  DeviceBuffer<uint16_t> st16(st16h);
  DeviceBuffer<int32_t> dslots(dec_slots);
  y.poison();
  cuda::ssd_decode(y.get(), cuda::SsdIn{dx.get(), kCd, ddt.get(), dA.get(), dD.get()},
                   bf16_state ? static_cast<void*>(st16.get()) : st32.get(), bf16_state, hpn, dims, dslots.get(), Bn,
                   nullptr);
  auto got = y.download();
  ASSERT_TRUE(test::all_finite(got));
  EXPECT_LE(rel_error(got, ref), bf16_state ? 1e-2 : 1e-6);
  auto got_states = bf16_state ? test::bf16_bits_to_f32(st16.download()) : st32.download();
  EXPECT_LE(rel_error(got_states, ref_states), bf16_state ? 1e-2 : 1e-6);
  // Gated (the fused decode's DecodeGate): g = y · silu(z) in place of y, Σ g² per (row, head), from the
  // same states again; padding rows give g = 0 and Σ = 0.
  const int64_t zs = kDi + 12;
  auto z = test::random_vec(Bn * zs, -4, 4, rng);
  std::vector<float> ref_g(ref.size()), ref_ssq(Bn * kH, 0.0f);
  for (int64_t b = 0; b < Bn; ++b)
    for (int64_t h = 0; h < kH; ++h) {
      double ss = 0;
      for (int64_t p = 0; p < kP; ++p) {
        const int64_t c = h * kP + p;
        ref_g[b * kDi + c] = ref[b * kDi + c] * cpu::silu(z[b * zs + c]);
        ss += static_cast<double>(ref_g[b * kDi + c]) * ref_g[b * kDi + c];
      }
      ref_ssq[b * kH + h] = static_cast<float>(ss);
    }
  st32.upload(states);
  st16.upload(st16h);
  DeviceBuffer<float> dz(z), ssq(Bn * kH);
  y.poison();
  ssq.poison();
  cuda::ssd_decode(y.get(), cuda::SsdIn{dx.get(), kCd, ddt.get(), dA.get(), dD.get()},
                   bf16_state ? static_cast<void*>(st16.get()) : st32.get(), bf16_state, hpn, dims, dslots.get(), Bn,
                   nullptr, {}, cuda::DecodeGate{dz.get(), zs, ssq.get()});
  auto got_g = y.download(), got_ssq = ssq.download();
  ASSERT_TRUE(test::all_finite(got_g) && test::all_finite(got_ssq));
  EXPECT_LE(rel_error(got_g, ref_g), bf16_state ? 1e-2 : 1e-5);
  EXPECT_LE(rel_error(got_ssq, ref_ssq), bf16_state ? 2e-2 : 1e-5);
  for (int64_t h = 0; h < kH; ++h) EXPECT_EQ(got_ssq[2 * kH + h], 0.0f) << "padding row, head " << h;
}

TEST(CudaKernels, SsdDecodeFp32State) {
  PCM_REQUIRE_GPU();
  check_ssd_decode(false, 5);
  check_ssd_decode(false, 9);
}
TEST(CudaKernels, SsdDecodeBf16State) {
  PCM_REQUIRE_GPU();
  check_ssd_decode(true, 5);
  check_ssd_decode(true, 9);
}

// The decode step's lane layouts at other state sizes (ssd_decode.cu): N = 256 (two 16-byte packs per lane
// for fp32), N = 16 (4 or 2 lanes per row, several rows per warp; P = 20 is not a multiple of the rows per
// warp step), N = 20 and 24 (rows that are not whole power-of-two packs: the plain-load path); small and
// large grids. raw_dt: the step applies dt's activation to in_proj's raw output itself (SsdIn::dt poisoned).
void check_ssd_decode_shape(int64_t H, int64_t P, int64_t G, int64_t N, bool bf16_state, int64_t Bn,
                            bool raw_dt = false) {
  std::mt19937 rng(static_cast<unsigned>(H * 1000 + P * 100 + N * 10 + Bn + (bf16_state ? 7 : 0)));
  const int64_t cd = H * P + 2 * G * N, stride = cd + 3, slots = Bn + 1, hpn = H * P * N;
  std::vector<int32_t> dec_slots(static_cast<size_t>(Bn));  // distinct slots, row 1 padding
  for (int64_t b = 0; b < Bn; ++b) dec_slots[b] = b == 1 ? -1 : static_cast<int32_t>((b + 2) % slots);
  auto xbc = test::random_vec(Bn * stride, -1, 1, rng), dt = test::random_vec(Bn * H, 1e-3f, 0.2f, rng);
  const int64_t raw_stride = H + 5;
  auto raw = test::random_vec(Bn * raw_stride, -6, 3, rng), dt_bias = test::random_vec(H, -2, 1, rng);
  const float lo = 1e-3f, hi = 0.15f;  // some dt clamp at each end
  if (raw_dt) cpu::dt_softplus_forward(dt.data(), raw.data(), raw_stride, dt_bias.data(), Bn, H, lo, hi);
  auto A = test::random_vec(H, -8.0f, -0.5f, rng), D = test::random_vec(H, 0.5f, 1.5f, rng);
  auto states = test::random_vec(slots * hpn, -0.5f, 0.5f, rng);
  if (bf16_state) states = test::bf16_round(states);
  std::vector<float> ref(Bn * H * P, 0.0f), ref_states = states;
  const cpu::SsdShape shape{H, P, G, N};
  for (int64_t b = 0; b < Bn; ++b) {
    if (dec_slots[b] < 0) continue;
    const float* x = xbc.data() + b * stride;
    cpu::SsdInputs ci{x, x + H * P, x + H * P + G * N, stride, dt.data() + b * H, A.data(), D.data()};
    cpu::ssd_recurrent_forward(ref.data() + b * H * P, ci, ref_states.data() + dec_slots[b] * hpn, 1, shape);
  }
  const cuda::SsdDims dims{static_cast<int32_t>(H), static_cast<int32_t>(P), static_cast<int32_t>(G),
                           static_cast<int32_t>(N)};
  DeviceBuffer<float> dx(xbc), ddt(dt), dA(A), dD(D), y(Bn * H * P), st32(states), draw(raw), dbias(dt_bias);
  if (raw_dt) ddt.poison();
  const auto st16h = test::bf16_bits(states);
  DeviceBuffer<uint16_t> st16(st16h);
  DeviceBuffer<int32_t> dslots(dec_slots);
  y.poison();
  cuda::ssd_decode(y.get(), cuda::SsdIn{dx.get(), stride, ddt.get(), dA.get(), dD.get()},
                   bf16_state ? static_cast<void*>(st16.get()) : st32.get(), bf16_state, hpn, dims, dslots.get(), Bn,
                   nullptr, raw_dt ? cuda::RawDt{draw.get(), raw_stride, dbias.get(), lo, hi} : cuda::RawDt{});
  auto got = y.download();
  ASSERT_TRUE(test::all_finite(got)) << "N " << N << " P " << P;
  const double tol = bf16_state ? 1e-2 : 1e-6;
  EXPECT_LE(rel_error(got, ref), tol) << "N " << N << " P " << P << " Bn " << Bn;
  auto got_states = bf16_state ? test::bf16_bits_to_f32(st16.download()) : st32.download();
  EXPECT_LE(rel_error(got_states, ref_states), tol) << "N " << N << " P " << P << " Bn " << Bn;
}

TEST(CudaKernels, SsdDecodeStateSizes) {
  PCM_REQUIRE_GPU();
  for (bool bf16 : {false, true}) {
    check_ssd_decode_shape(8, 64, 2, 256, bf16, 3);    // fp32: 2 packs per lane; bf16: 32 lanes per row
    check_ssd_decode_shape(8, 20, 2, 16, bf16, 3);     // 4 (fp32) or 2 (bf16) lanes per row, last step partial
    check_ssd_decode_shape(8, 24, 4, 20, bf16, 3);     // plain loads, masked columns
    check_ssd_decode_shape(8, 24, 2, 24, bf16, 3);     // fp32: 6 packs (not a power of two); bf16: 3
    check_ssd_decode_shape(128, 20, 8, 16, bf16, 9);   // large grid (256 / 128 threads per block)
    check_ssd_decode_shape(kH, kP, kG, kN, bf16, 9, /*raw_dt=*/true);
  }
}

// ---- fused decode projections (decode_fused.cu) against the CPU: RMSNorm / gated RMSNorm rounded to
// bf16 like the unfused path, bf16 weights, fp32 accumulation.
// Host-side rules of the fused decode (no GPU needed): which shapes take it, and calls outside them are
// errors that say what is wrong instead of computing the first 4 rows or a wrong shared-memory size.
TEST(CudaKernels, DecodeFusedShapeRules) {
  // pcm-mini: d 384, d_inner 768, one group, d_in_proj 1676, K 4
  EXPECT_TRUE(cuda::decode_fused_supported(1, 384, 768, 768, 1676, 4));
  EXPECT_TRUE(cuda::decode_fused_supported(4, kD, kDi, kDi / kG, kDi + kCd + kH, kK));
  EXPECT_FALSE(cuda::decode_fused_supported(0, 384, 768, 768, 1676, 4));
  EXPECT_FALSE(cuda::decode_fused_supported(5, 384, 768, 768, 1676, 4));
  EXPECT_FALSE(cuda::decode_fused_supported(1, 384, 768, 768, 1676, 9));  // conv taps
  EXPECT_FALSE(cuda::decode_fused_supported(1, 384, 768, 0, 1676, 4));    // group
  EXPECT_FALSE(cuda::decode_fused_supported(1, 384, 768, 512, 1676, 4));  // groups do not tile d_inner
  EXPECT_FALSE(cuda::decode_fused_supported(1, 384, 768, 768, 1678, 4));  // z rows not 16-byte aligned
  // 4 rows of the widest input in bf16 must fit the 200 KiB of shared memory: d counts as well as d_inner.
  EXPECT_FALSE(cuda::decode_fused_supported(1, 32768, 16384, 16384, 3 * 16384, 4));
  EXPECT_FALSE(cuda::decode_fused_supported(1, 16384, 32768, 32768, 3 * 32768, 4));
  EXPECT_NO_THROW(cuda::decode_fused_prepare(32768));  // unsupported width: nothing to prepare
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const cuda::DecodeInProjOut o{};
  EXPECT_NE(message([&] { cuda::decode_in_proj(o, nullptr, nullptr, 1e-5f, nullptr, 5, 384, nullptr); })
                .find("fused decode: 5 rows (1..4 supported)"),
            std::string::npos);
  EXPECT_NE(message([&] { cuda::decode_head(nullptr, nullptr, nullptr, 1e-5f, nullptr, 1, 100, 12, nullptr); })
                .find("fused decode: 12 input columns"),
            std::string::npos);
  EXPECT_FALSE(cuda::decode_fused_supported(1, 384, 4096, 64, 1676, 4));  // 64 groups: over the prologue's 32
  EXPECT_NE(message([&] {
              cuda::decode_out_proj(nullptr, nullptr, nullptr, nullptr, 10, nullptr, 256, 1e-5f, nullptr, 1, 384, 768,
                                    nullptr);
            }).find("fused decode out_proj: groups of 256 channels over 768 channels and 10 heads"),
            std::string::npos);  // 3 groups cannot each take whole heads of 10
}

TEST(CudaKernels, DecodeFusedInProj) {
  PCM_REQUIRE_GPU();
  ASSERT_TRUE(cuda::decode_fused_supported(3, kD, kDi, kDi / kG, kDi + kCd + kH, kK));
  cuda::decode_fused_prepare(kDi);
  std::mt19937 rng(21);
  const int64_t T = 3, n = kDi + kCd + kH, slots = 3;
  const std::vector<int32_t> dec_slots = {2, -1, 0};
  std::vector<int32_t> slot_pos = {3, 1, 2};  // each slot's position in its conv ring
  const std::vector<int32_t> dec_pos = {slot_pos[2], 0, slot_pos[0]};
  auto resid = test::random_vec(T * kD, -2, 2, rng), norm_w = test::random_vec(kD, 0.5, 1.5, rng);
  auto w = test::bf16_round(test::random_vec(n * kD, -0.03f, 0.03f, rng)), bias = test::random_vec(n, -0.5, 0.5, rng);
  auto conv_w = test::random_vec(kCd * kK, -0.5, 0.5, rng), conv_b = test::random_vec(kCd, -0.5, 0.5, rng);
  auto windows = test::random_vec(slots * kCd * kK, -1, 1, rng), dt_bias = test::random_vec(kH, -3, 1, rng);
  const float lo = 1e-3f, hi = 0.1f;  // some dt clamp at each end
  std::vector<float> xn(T * kD), proj(T * n);
  cpu::rmsnorm_forward(xn.data(), resid.data(), norm_w.data(), T, kD, 1e-5f);
  xn = test::bf16_round(xn);
  cpu::matmul_forward(proj.data(), xn.data(), MatrixRef{w.data(), DType::F32, n, kD}, bias.data(), T);
  std::vector<float> ref_z(T * kDi), ref_xbc(T * kCd, 0.0f), ref_dt(T * kH), ref_windows = windows;
  for (int64_t t = 0; t < T; ++t) {
    std::copy_n(proj.begin() + t * n, kDi, ref_z.begin() + t * kDi);
    if (dec_slots[t] >= 0)
      cpu::conv1d_silu_forward(ref_xbc.data() + t * kCd, proj.data() + t * n + kDi, n,
                               ref_windows.data() + dec_slots[t] * kCd * kK, conv_w.data(), conv_b.data(), 1, kCd, kK);
  }
  cpu::dt_softplus_forward(ref_dt.data(), proj.data() + kDi + kCd, n, dt_bias.data(), T, kH, lo, hi);
  const auto rings = windows_as_rings(windows, slot_pos, true);
  DeviceBuffer<float> dresid(resid), dnorm(norm_w), dbias(bias), dcw(conv_w), dcb(conv_b), dwin(rings),
      ddtb(dt_bias), zx(T * n), xbc(T * kCd), dt(T * kH);
  DeviceBuffer<uint16_t> dw(test::bf16_bits(w));
  DeviceBuffer<int32_t> dslots(dec_slots), dpos(dec_pos);
  zx.poison();
  xbc.poison();
  dt.poison();
  const cuda::DecodeInProjOut o{zx.get(), n, xbc.get(), dt.get(), dbias.get(), kDi, kCd, kH, dwin.get(), kCd * kK,
                                dcw.get(), dcb.get(), static_cast<int32_t>(kK), dslots.get(), dpos.get(), ddtb.get(),
                                lo, hi};
  cuda::decode_in_proj(o, dresid.get(), dnorm.get(), 1e-5f, dw.get(), T, kD, nullptr);
  auto got_zx = zx.download();
  std::vector<float> got_z(T * kDi);
  for (int64_t t = 0; t < T; ++t) std::copy_n(got_zx.begin() + t * n, kDi, got_z.begin() + t * kDi);
  auto got_xbc = xbc.download(), got_dt = dt.download(), got_win = dwin.download();
  ASSERT_TRUE(test::all_finite(got_z) && test::all_finite(got_xbc) && test::all_finite(got_dt));
  EXPECT_LE(rel_error(got_z, ref_z), 1e-4);
  EXPECT_LE(rel_error(got_xbc, ref_xbc), 1e-4);
  EXPECT_LE(rel_error(got_dt, ref_dt), 1e-4);
  std::vector<int32_t> pos_after = slot_pos;
  for (int32_t slot : {2, 0}) pos_after[slot] = (slot_pos[slot] + 1) % kK;
  EXPECT_LE(rel_error(windows_as_rings(got_win, pos_after, false), ref_windows), 1e-5);
  for (int64_t c = 0; c < kCd; ++c) EXPECT_EQ(got_xbc[kCd + c], 0.0f) << "padding row, channel " << c;
  EXPECT_TRUE(std::equal(got_win.begin() + kCd * kK, got_win.begin() + 2 * kCd * kK, rings.begin() + kCd * kK))
      << "slot 1 (unused) changed";
  // Rows handed out by a queue instead of fixed shares: the same bits (each row is still one warp's dot product), and
  // the queue is zero again after each launch (three launches from the same starting windows).
  DeviceBuffer<unsigned long long> queue(std::vector<unsigned long long>{0});
  for (int rep = 0; rep < 3; ++rep) {
    dwin.upload(rings);
    zx.poison();
    xbc.poison();
    dt.poison();
    cuda::decode_in_proj(o, dresid.get(), dnorm.get(), 1e-5f, dw.get(), T, kD, nullptr, queue.get());
    const auto rep_zx = zx.download();  // z only: the rest of each zx row is poison (NaN) in both runs
    for (int64_t t = 0; t < T; ++t)
      EXPECT_TRUE(std::equal(rep_zx.begin() + t * n, rep_zx.begin() + t * n + kDi, got_zx.begin() + t * n))
          << "launch " << rep << ", row " << t;
    EXPECT_EQ(xbc.download(), got_xbc) << "launch " << rep;
    EXPECT_EQ(dt.download(), got_dt) << "launch " << rep;
    EXPECT_EQ(dwin.download(), got_win) << "launch " << rep;
    EXPECT_EQ(queue.download(), (std::vector<unsigned long long>{0})) << "launch " << rep;
  }
}

TEST(CudaKernels, DecodeFusedOutProjAndHead) {
  PCM_REQUIRE_GPU();
  cuda::decode_fused_prepare(kDi);
  std::mt19937 rng(22);
  for (int64_t T : {1, 4}) {
    const int64_t zs = kDi + 76;  // z is a strided slice of in_proj's output
    auto y = test::random_vec(T * kDi, -2, 2, rng), z = test::random_vec(T * zs, -3, 3, rng);
    auto gate_w = test::random_vec(kDi, 0.5, 1.5, rng), resid = test::random_vec(T * kD, -1, 1, rng);
    auto w = test::bf16_round(test::random_vec(kD * kDi, -0.02f, 0.02f, rng)), bias = test::random_vec(kD, -0.5, 0.5, rng);
    std::vector<float> g(T * kDi), ref(T * kD);
    cpu::gated_rmsnorm_forward(g.data(), y.data(), z.data(), zs, gate_w.data(), T, kDi, kDi / kG, 1e-5f);
    g = test::bf16_round(g);
    cpu::matmul_forward(ref.data(), g.data(), MatrixRef{w.data(), DType::F32, kD, kDi}, bias.data(), T);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += resid[i];
    // The kernel's inputs as the gated SSD step leaves them: g = y · silu(z), Σ g² per head.
    std::vector<float> gated(T * kDi), ssq(T * kH, 0.0f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < kDi; ++c) {
        gated[t * kDi + c] = y[t * kDi + c] * cpu::silu(z[t * zs + c]);
        ssq[t * kH + c / kP] += gated[t * kDi + c] * gated[t * kDi + c];
      }
    DeviceBuffer<float> dgated(gated), dssq(ssq), dg(gate_w), dresid(resid), dbias(bias);
    DeviceBuffer<uint16_t> dw(test::bf16_bits(w));
    cuda::decode_out_proj(dresid.get(), dbias.get(), dgated.get(), dssq.get(), kH, dg.get(), kDi / kG, 1e-5f, dw.get(),
                          T, kD, kDi, nullptr);
    auto got = dresid.download();
    ASSERT_TRUE(test::all_finite(got));
    EXPECT_LE(rel_error(got, ref), 1e-4) << "T " << T;
    // Head: RMSNorm of the residual rows, then the vocabulary projection (V = 1000 rows here).
    const int64_t V = 1000;
    auto norm_w = test::random_vec(kD, 0.5, 1.5, rng);
    auto head = test::bf16_round(test::random_vec(V * kD, -0.05f, 0.05f, rng));
    std::vector<float> xn(T * kD), ref_logits(T * V);
    cpu::rmsnorm_forward(xn.data(), got.data(), norm_w.data(), T, kD, 1e-5f);
    xn = test::bf16_round(xn);
    cpu::matmul_forward(ref_logits.data(), xn.data(), MatrixRef{head.data(), DType::F32, V, kD}, nullptr, T);
    DeviceBuffer<float> dn(norm_w), logits(T * V);
    DeviceBuffer<uint16_t> dhead(test::bf16_bits(head));
    logits.poison();
    cuda::decode_head(logits.get(), dresid.get(), dn.get(), 1e-5f, dhead.get(), T, V, kD, nullptr);
    auto got_logits = logits.download();
    ASSERT_TRUE(test::all_finite(got_logits));
    // 1e-3: a few normalised inputs round to the other bf16 neighbour (different fp32 sum order)
    EXPECT_LE(rel_error(got_logits, ref_logits), 1e-3) << "T " << T;
    // Rows from a queue: the same bits as fixed shares. 1000 rows never reach the queue (fewer than the grid's warps),
    // so this part takes a vocabulary of 8000 rows (over 3 rows a warp at up to 166 SMs) and compares the two on the GPU.
    const int64_t Vq = 8000;
    DeviceBuffer<uint16_t> dhead_q(test::bf16_bits(test::random_vec(Vq * kD, -0.05f, 0.05f, rng)));
    DeviceBuffer<float> fixed_q(T * Vq), queued_q(T * Vq);
    DeviceBuffer<unsigned long long> queue(std::vector<unsigned long long>{0});
    fixed_q.poison();
    queued_q.poison();
    cuda::decode_head(fixed_q.get(), dresid.get(), dn.get(), 1e-5f, dhead_q.get(), T, Vq, kD, nullptr);
    cuda::decode_head(queued_q.get(), dresid.get(), dn.get(), 1e-5f, dhead_q.get(), T, Vq, kD, nullptr, queue.get());
    const auto want_q = fixed_q.download();
    ASSERT_TRUE(test::all_finite(want_q));
    EXPECT_EQ(queued_q.download(), want_q) << "T " << T;
    EXPECT_EQ(queue.download(), (std::vector<unsigned long long>{0})) << "T " << T;
  }
}

// The bench's per-block timestamps (decode_trace.cuh): with a buffer set, every block of the fused head and of the
// SSD step leaves one record (its kind, block index and SM, in order start <= wait <= ready <= end); without one,
// nothing is written.
TEST(CudaKernels, DecodeTraceRecordsEveryBlock) {
  PCM_REQUIRE_GPU();
  cuda::decode_fused_prepare(kDi);
  const int64_t V = 1000, cap = 4096;
  DeviceBuffer<float> resid(std::vector<float>(kD, 1.0f)), norm_w(std::vector<float>(kD, 1.0f)), logits(V);
  DeviceBuffer<uint16_t> head(std::vector<uint16_t>(V * kD, 0x3c00));
  std::vector<float> xbc(kCd, 0.1f), dt(kH, 0.01f), A(kH, -1.0f), D(kH, 1.0f), state(kH * kP * kN, 0.5f);
  DeviceBuffer<float> dxbc(xbc), ddt(dt), dA(A), dD(D), dstate(state), y(kDi);
  DeviceBuffer<int32_t> slots(std::vector<int32_t>{0});
  std::vector<unsigned long long> host(8 + cap * 8, 0);
  host[5] = cap;
  DeviceBuffer<unsigned long long> buf(host);
  const cuda::SsdDims dims{kH, kP, kG, kN};
  auto run = [&] {
    cuda::decode_head(logits.get(), resid.get(), norm_w.get(), 1e-5f, head.get(), 1, V, kD, nullptr);
    cuda::ssd_decode(y.get(), cuda::SsdIn{dxbc.get(), kCd, ddt.get(), dA.get(), dD.get()}, dstate.get(), false,
                     kH * kP * kN, dims, slots.get(), 1, nullptr);
    PCM_CUDA(cudaDeviceSynchronize());
  };
  run();  // off: nothing written
  EXPECT_EQ(buf.download(), host);
  cuda::decode_trace(buf.get());
  run();
  cuda::decode_trace(nullptr);
  const auto got = buf.download();
  const int64_t head_blocks = (V + 7) / 8;  // 8 weight rows per block at 1000 rows: fewer blocks than 2 per SM
  EXPECT_EQ(got[2], static_cast<unsigned long long>(head_blocks));
  EXPECT_EQ(got[3], static_cast<unsigned long long>(kH));
  ASSERT_EQ(got[4], static_cast<unsigned long long>(head_blocks + kH));
  std::vector<int> seen_head(head_blocks, 0), seen_step(kH, 0);
  for (int64_t i = 0; i < head_blocks + kH; ++i) {
    const unsigned long long* r = got.data() + 8 + i * 8;
    const unsigned kind = r[0] & 255;
    const unsigned long long block = r[0] >> 8;
    ASSERT_TRUE(kind == 2 || kind == 3) << "record " << i;
    if (kind == 2) {
      ASSERT_LT(block, static_cast<unsigned long long>(head_blocks));
      ++seen_head[block];
    } else {
      ASSERT_LT(block, static_cast<unsigned long long>(kH));
      ++seen_step[block];
    }
    EXPECT_GT(r[4], 0ull);
    EXPECT_LE(r[4], r[5]) << "start <= wait, record " << i;
    EXPECT_LE(r[5], r[6]) << "wait <= ready, record " << i;
    EXPECT_LE(r[6], r[7]) << "ready <= end, record " << i;
  }
  EXPECT_EQ(std::count(seen_head.begin(), seen_head.end(), 1), head_blocks);
  EXPECT_EQ(std::count(seen_step.begin(), seen_step.end(), 1), kH);
}

// Greedy equals argmax; restricted draws stay inside the set the CPU sampler would draw from;
// the same (seed, step) gives the same id.
// The layer stream probe (a benchmark's bound, decode v26): `layers` x (y_in = W_in · bf16(tanh(y_out[:k_in])), y_out
// = W_out · bf16(tanh(y_in[:k_out]))) against the CPU matmul, in one persistent launch (grid barriers; the next
// weights asked before or after each) and in a launch per GEMV: the three bit-equal (each row is one warp's in one
// order). Rows of a partial chunk (256 columns) and of several chunks and a partial one (2560).
TEST(CudaKernels, LayerStreamProbeMatchesCpu) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(31);
  const int64_t n_in = 3000, k_in = 256, n_out = 600, k_out = 2560;
  const int layers = 3;
  std::vector<std::vector<float>> w_in, w_out;
  std::vector<std::unique_ptr<DeviceBuffer<uint16_t>>> dw;
  std::vector<const void*> p_in, p_out;
  for (int l = 0; l < layers; ++l) {
    w_in.push_back(test::bf16_round(test::random_vec(n_in * k_in, -0.1f, 0.1f, rng)));
    w_out.push_back(test::bf16_round(test::random_vec(n_out * k_out, -0.05f, 0.05f, rng)));
    dw.push_back(std::make_unique<DeviceBuffer<uint16_t>>(test::bf16_bits(w_in.back())));
    p_in.push_back(dw.back()->get());
    dw.push_back(std::make_unique<DeviceBuffer<uint16_t>>(test::bf16_bits(w_out.back())));
    p_out.push_back(dw.back()->get());
  }
  const auto x0 = test::random_vec(n_out, -2, 2, rng);
  // The CPU chain.
  std::vector<float> y_in(n_in), y_out = x0;
  auto input = [](const std::vector<float>& src, int64_t k) {
    std::vector<float> x(src.begin(), src.begin() + k);
    for (float& v : x) v = std::tanh(v);
    return test::bf16_round(x);
  };
  for (int l = 0; l < layers; ++l) {
    const auto xi = input(y_out, k_in);
    cpu::matmul_forward(y_in.data(), xi.data(), MatrixRef{w_in[l].data(), DType::F32, n_in, k_in}, nullptr, 1);
    const auto xo = input(y_in, k_out);
    cpu::matmul_forward(y_out.data(), xo.data(), MatrixRef{w_out[l].data(), DType::F32, n_out, k_out}, nullptr, 1);
  }
  DeviceBuffer<const void*> d_in(p_in), d_out(p_out);
  DeviceBuffer<unsigned> barrier(1);
  std::vector<std::vector<float>> got;
  for (auto [prefetch, one_launch] : {std::pair{true, true}, std::pair{false, true}, std::pair{false, false}}) {
    DeviceBuffer<float> dy_in(n_in), dy_out(x0);
    dy_in.poison();
    cuda::layer_stream_probe(dy_in.get(), dy_out.get(), d_in.get(), d_out.get(), layers, n_in, k_in, n_out, k_out,
                             prefetch, one_launch, barrier.get(), nullptr);
    got.push_back(dy_out.download());
    ASSERT_TRUE(test::all_finite(got.back())) << prefetch << one_launch;
    EXPECT_LE(rel_error(got.back(), y_out), 2e-3) << prefetch << one_launch;
    EXPECT_LE(rel_error(dy_in.download(), y_in), 2e-3) << prefetch << one_launch;
  }
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(got[0], got[2]);
}

TEST(CudaKernels, SamplingOnDevice) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(19);
  const int64_t V = 32768, Bn = 7;
  auto logits = test::random_vec(Bn * V, -10, 10, rng);
  std::vector<cuda::DeviceSampling> params = {
      {0.0f, 1.0f, 0.0f, 0, 1, 0},  {1.0f, 1.0f, 0.0f, 1, 2, 0},  {0.7f, 1.0f, 0.0f, 5, 3, 0},
      {1.0f, 0.3f, 0.0f, 0, 4, 0},  {1.0f, 1.0f, 0.5f, 0, 5, 0},  {1.3f, 0.9f, 0.1f, 40, 6, 0},
      {1e-39f, 1.0f, 0.0f, 0, 7, 0}};  // 1 / T overflows: must still be greedy
  DeviceBuffer<float> dl(logits);
  DeviceBuffer<cuda::DeviceSampling> dp(params);
  DeviceBuffer<int32_t> ids(Bn);
  for (int rep = 0; rep < 20; ++rep) {
    for (auto& p : params) p.step = static_cast<uint64_t>(rep);
    dp.upload(params);
    ids.poison();
    cuda::sample(ids.get(), dl.get(), V, dp.get(), Bn, nullptr);
    auto got = ids.download();
    for (int64_t b = 0; b < Bn; ++b) {
      const float* l = logits.data() + b * V;
      const int32_t id = got[static_cast<size_t>(b)];
      ASSERT_TRUE(id >= 0 && id < V) << "row " << b;
      const int32_t am = argmax(l, V);
      const auto& p = params[static_cast<size_t>(b)];
      std::vector<int32_t> order(static_cast<size_t>(V));
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return l[a] > l[c]; });
      const int64_t rank = std::find(order.begin(), order.end(), id) - order.begin();
      if (p.temperature < 1e-30f || p.top_k == 1) { EXPECT_EQ(id, am) << "row " << b; }
      if (p.top_k > 0) { EXPECT_LT(rank, p.top_k) << "row " << b; }
      if (p.min_p > 0) { EXPECT_GE(std::exp((l[id] - l[am]) / p.temperature), p.min_p * 0.999f) << "row " << b; }
      if (p.top_p < 1.0f) {  // the id lies inside the nucleus
        double z = 0, cum = 0;
        for (int64_t i = 0; i < V; ++i) z += std::exp((l[i] - l[am]) / p.temperature);
        for (int64_t r = 0; r < rank; ++r) cum += std::exp((l[order[r]] - l[am]) / p.temperature) / z;
        EXPECT_LT(cum, p.top_p + 1e-4) << "row " << b;
      }
    }
    DeviceBuffer<int32_t> again(Bn);
    cuda::sample(again.get(), dl.get(), V, dp.get(), Bn, nullptr);
    EXPECT_EQ(again.download(), got);
  }
}

// The draws follow the distribution: 20000 rows of the same 8 logits (one draw each, steps 0..19999)
// against the CPU sampler's kept set renormalised (temperature, top-k, top-p, min-p).
TEST(CudaKernels, SamplingFrequenciesMatchDistribution) {
  PCM_REQUIRE_GPU();
  const std::vector<float> base = {0.0f, 1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.2f, -0.3f};
  const int64_t V = 8, Bn = 20000;
  struct Case {
    float temperature, top_p, min_p;
    int32_t top_k;
  };
  for (const Case& c : {Case{1.0f, 1.0f, 0.0f, 0}, Case{0.7f, 1.0f, 0.0f, 3}, Case{1.0f, 0.7f, 0.0f, 0},
                        Case{1.5f, 1.0f, 0.3f, 0}}) {
    // Expected: softmax(base / T) restricted like the CPU sampler (sorted order, prefix for top-p).
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return base[a] > base[b]; });
    std::vector<double> p(V, 0.0);
    int64_t n = c.top_k > 0 ? c.top_k : V;
    double z = 0;
    for (int64_t r = 0; r < n; ++r) z += std::exp((base[order[r]] - base[order[0]]) / c.temperature);
    double cum = 0;
    int64_t keep = n;
    for (int64_t r = 0; r < n; ++r) {
      cum += std::exp((base[order[r]] - base[order[0]]) / c.temperature) / z;
      if (c.top_p < 1.0f && cum >= c.top_p) {
        keep = r + 1;
        break;
      }
    }
    double mass = 0;
    for (int64_t r = 0; r < keep; ++r) {
      const double q = std::exp((base[order[r]] - base[order[0]]) / c.temperature);
      if (q < c.min_p) break;
      p[order[r]] = q;
      mass += q;
    }
    for (double& q : p) q /= mass;
    std::vector<float> logits;
    std::vector<cuda::DeviceSampling> params;
    for (int64_t b = 0; b < Bn; ++b) {
      logits.insert(logits.end(), base.begin(), base.end());
      params.push_back({c.temperature, c.top_p, c.min_p, c.top_k, 12345, static_cast<uint64_t>(b)});
    }
    DeviceBuffer<float> dl(logits);
    DeviceBuffer<cuda::DeviceSampling> dp(params);
    DeviceBuffer<int32_t> ids(Bn);
    ids.poison();
    cuda::sample(ids.get(), dl.get(), V, dp.get(), Bn, nullptr);
    std::vector<double> freq(V, 0.0);
    for (int32_t id : ids.download()) {
      ASSERT_TRUE(id >= 0 && id < V);
      freq[id] += 1.0 / Bn;
    }
    for (int64_t i = 0; i < V; ++i)
      EXPECT_NEAR(freq[i], p[i], 0.015) << "token " << i << " T " << c.temperature << " k " << c.top_k << " p "
                                        << c.top_p << " min_p " << c.min_p;
  }
}

}  // namespace
}  // namespace pcm
#else
TEST(CudaKernels, BuiltWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
