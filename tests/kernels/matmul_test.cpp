// matmul_forward against a float64 reference over the dequantised weights, for every weight dtype,
// row counts on both sides of the matvec/GEMM switch, and each x86 kernel the CPU supports.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_x86.h"
#include "tensor/q8_0.h"
#include "test_util.h"

namespace pcm {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  MatrixRef ref;
  std::vector<float> dequantised;  // what the kernel should multiply by
};

Weights make_weights(DType dtype, int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> f(static_cast<size_t>(rows * cols));
  for (float& v : f) v = nd(rng);
  Weights w;
  w.bytes.resize(static_cast<size_t>(rows) * row_bytes(dtype, cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = f.data() + r * cols;
    uint8_t* dst = w.bytes.data() + static_cast<size_t>(r) * row_bytes(dtype, cols);
    if (dtype == DType::F32) std::memcpy(dst, src, static_cast<size_t>(cols) * 4);
    if (dtype == DType::BF16)
      for (int64_t k = 0; k < cols; ++k) reinterpret_cast<uint16_t*>(dst)[k] = f32_to_bf16(src[k]);
    if (dtype == DType::F16)
      for (int64_t k = 0; k < cols; ++k) reinterpret_cast<uint16_t*>(dst)[k] = f32_to_f16(src[k]);
    if (dtype == DType::Q8_0) quantize_row_q8_0(src, dst, cols);
  }
  w.ref = MatrixRef{w.bytes.data(), dtype, rows, cols};
  w.dequantised.resize(f.size());
  for (int64_t r = 0; r < rows; ++r) w.ref.row_to_f32(r, w.dequantised.data() + r * cols);
  return w;
}

std::vector<float> reference(const Weights& w, const std::vector<float>& x, int64_t T) {
  const int64_t R = w.ref.rows, K = w.ref.cols;
  std::vector<float> out(static_cast<size_t>(T * R));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < R; ++r) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(w.dequantised[r * K + k]) * x[t * K + k];
      out[t * R + r] = static_cast<float>(s);
    }
  return out;
}

std::vector<float> inputs(int64_t T, int64_t K) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * K));
  for (float& v : x) v = u(rng);
  return x;
}

class MatmulDtypes : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulDtypes, MatchesFloat64ReferenceForAllRowCounts) {
  const int64_t R = 77, K = 320;  // R odd and not a block multiple; K a multiple of 32 for Q8_0
  Weights w = make_weights(GetParam(), R, K, 3);
  for (int64_t T : {1, 2, 5, 8, 9, 40}) {
    auto x = inputs(T, K);
    auto expect = reference(w, x, T);
    std::vector<float> out(expect.size(), -1e30f);
    cpu::matmul_forward(out.data(), x.data(), w.ref, nullptr, T, cpu::MatmulPrecision::Exact);
    EXPECT_LE(test::rel_error(out, expect), 1e-5) << dtype_name(GetParam()) << " T=" << T;
    if (GetParam() == DType::BF16 && cpu::bf16_gemm_available()) {  // bf16 activations: ~2^-9 per product
      cpu::matmul_forward(out.data(), x.data(), w.ref, nullptr, T, cpu::MatmulPrecision::Bf16Activations);
      EXPECT_LE(test::rel_error(out, expect), 1e-2) << "bf16 activations T=" << T;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatmulDtypes, ::testing::Values(DType::F32, DType::BF16, DType::F16, DType::Q8_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(MatmulKernels, Avx2AndAvx512AgreeWithReference) {
  const int64_t R = 64, K = 256;
  Weights wb = make_weights(DType::BF16, R, K, 5), wq = make_weights(DType::Q8_0, R, K, 6);
  for (int64_t T : {1, 3, 8}) {
    auto x = inputs(T, K);
    auto eb = reference(wb, x, T), eq = reference(wq, x, T);
    std::vector<float> out(eb.size());
    auto wbp = static_cast<const uint16_t*>(wb.ref.data);
    auto wqp = static_cast<const uint8_t*>(wq.ref.data);
    if (cpu::x86::has_avx2()) {
      cpu::x86::matvec_bf16_f32_avx2(out.data(), x.data(), wbp, R, K, T);
      EXPECT_LE(test::rel_error(out, eb), 1e-5);
      cpu::x86::matvec_q8_0_f32_avx2(out.data(), x.data(), wqp, R, K, T);
      EXPECT_LE(test::rel_error(out, eq), 1e-5);
    }
    if (cpu::x86::has_avx512()) {
      cpu::x86::matvec_bf16_f32(out.data(), x.data(), wbp, R, K, T);
      EXPECT_LE(test::rel_error(out, eb), 1e-5);
      cpu::x86::matvec_q8_0_f32(out.data(), x.data(), wqp, R, K, T);
      EXPECT_LE(test::rel_error(out, eq), 1e-5);
    }
  }
}

// The prefill GEMM (48-row panels × 8 tokens, k in pairs) at every kind of tail: rows around the panel size,
// token counts around the block size, odd K (the last column alone). Against float64 over the same bf16 inputs,
// so only the fp32 summation differs; every output written, nothing written past the end.
TEST(GemmBf16, MatchesFloat64OnTheSameBf16InputsAtEveryTail) {
  if (!cpu::x86::has_avx512_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  std::mt19937_64 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t rows : {1, 47, 48, 49, 100})
    for (int64_t K : {1, 2, 63, 64, 333})
      for (int64_t T : {1, 7, 8, 9, 17}) {
        std::vector<uint16_t> W(static_cast<size_t>(rows * K)), x(static_cast<size_t>(T * K));
        for (auto& v : W) v = f32_to_bf16(nd(rng));
        for (auto& v : x) v = f32_to_bf16(nd(rng));
        constexpr float kPoison = 12345.0f;
        std::vector<float> out(static_cast<size_t>(T * rows) + 64, kPoison);  // 64 guard values past the end
        cpu::x86::gemm_bf16_bf16(out.data(), x.data(), W.data(), rows, K, T);
        std::vector<float> expect(static_cast<size_t>(T * rows));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            double s = 0.0;
            for (int64_t k = 0; k < K; ++k)
              s += static_cast<double>(bf16_to_f32(W[r * K + k])) * bf16_to_f32(x[t * K + k]);
            expect[t * rows + r] = static_cast<float>(s);
          }
        const std::string at = "rows " + std::to_string(rows) + " K " + std::to_string(K) + " T " + std::to_string(T);
        EXPECT_LE(test::rel_error(out.data(), expect.data(), expect.size()), 1e-6) << at;
        for (size_t i = 0; i < expect.size(); ++i) ASSERT_NE(out[i], kPoison) << at << " output " << i << " not written";
        for (size_t i = expect.size(); i < out.size(); ++i) ASSERT_EQ(out[i], kPoison) << at << " wrote past the end";
      }
}

// The fast Q8_0 decode (int16 activations per block, vpdpwssd) against float64 over the dequantised weights, at
// every row count it serves; a NaN or Inf activation makes the outputs of its block NaN, never a finite value.
TEST(MatmulQ8Fast, Int16ActivationsMatchFloat64AndPropagateNonFinite) {
  if (!cpu::x86::has_avx512_vnni()) GTEST_SKIP() << "no AVX512_VNNI on this CPU";
  const int64_t R = 77, K = 320;
  const Weights w = make_weights(DType::Q8_0, R, K, 9);
  for (int64_t T = 1; T <= cpu::kMatvecMaxRows; ++T) {
    auto x = inputs(T, K);
    x[0] = 0.0f;  // one all-zero block: a zero scale, no division by zero
    for (int64_t k = 1; k < 32; ++k) x[static_cast<size_t>(k)] = 0.0f;
    const auto expect = reference(w, x, T);
    std::vector<float> out(expect.size(), -1e30f);
    cpu::matmul_forward(out.data(), x.data(), w.ref, nullptr, T, cpu::MatmulPrecision::Bf16Activations);
    EXPECT_LE(test::rel_error(out, expect), 1e-4) << "T=" << T;
    for (float v : out) ASSERT_NE(v, -1e30f) << "T=" << T << ": an output was not written";
  }
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto x = inputs(2, K);
    x[static_cast<size_t>(K + 40)] = bad;  // row 1, second block
    std::vector<float> out(static_cast<size_t>(2 * R));
    cpu::matmul_forward(out.data(), x.data(), w.ref, nullptr, 2, cpu::MatmulPrecision::Bf16Activations);
    for (int64_t r = 0; r < R; ++r) {
      EXPECT_TRUE(std::isfinite(out[static_cast<size_t>(r)])) << "row 0 has only finite inputs";
      EXPECT_TRUE(std::isnan(out[static_cast<size_t>(R + r)])) << "row 1 output " << r << " = " << out[R + r];
    }
  }
}

// The model runs in_proj as two products over row ranges of one weight matrix (rows_view): each must equal
// its columns of the whole product, bias included, in every dtype and on both sides of the matvec/GEMM switch.
TEST(MatmulRowsView, RowRangesEqualTheirColumnsOfTheWholeProduct) {
  const int64_t R = 96, K = 64, split = 40;
  std::vector<float> bias(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) bias[static_cast<size_t>(r)] = 0.01f * static_cast<float>(r);
  for (DType dtype : {DType::F32, DType::BF16, DType::Q8_0})
    for (int64_t T : {int64_t{1}, int64_t{37}}) {
      const Weights w = make_weights(dtype, R, K, 5);
      const std::vector<float> x = inputs(T, K);
      std::vector<float> whole(static_cast<size_t>(T * R)), lo(static_cast<size_t>(T * split)),
          hi(static_cast<size_t>(T * (R - split)));
      cpu::matmul_forward(whole.data(), x.data(), w.ref, bias.data(), T, cpu::MatmulPrecision::Exact);
      cpu::matmul_forward(lo.data(), x.data(), w.ref.rows_view(0, split), bias.data(), T, cpu::MatmulPrecision::Exact);
      cpu::matmul_forward(hi.data(), x.data(), w.ref.rows_view(split, R - split), bias.data() + split, T,
                          cpu::MatmulPrecision::Exact);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < R; ++r) {
          const float got = r < split ? lo[t * split + r] : hi[t * (R - split) + r - split];
          EXPECT_NEAR(got, whole[t * R + r], 1e-5f) << dtype_name(dtype) << " T=" << T << " row " << r;
        }
    }
  const Weights w = make_weights(DType::F32, R, K, 5);
  EXPECT_THROW(w.ref.rows_view(split, R), Error);  // past the last row: a named error, not a wild pointer
  EXPECT_THROW(w.ref.rows_view(-1, 2), Error);
}

TEST(Q8_0Format, QuantisationRoundTripAndScale) {
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * (i < 32 ? 1.0f : 1e-3f);
  std::vector<uint8_t> q(2 * kQ8BlockBytes);
  quantize_row_q8_0(x.data(), q.data(), 64);
  std::vector<float> back(64);
  convert_to_f32(q.data(), DType::Q8_0, back.data(), 64);
  for (size_t i = 0; i < 64; ++i) {
    const float amax = i < 32 ? 1.0f : 1e-3f;
    EXPECT_LE(std::fabs(back[i] - x[i]), amax / 127.0f) << i;  // half a step plus the fp16 scale's rounding
  }
  std::vector<float> zeros(32, 0.0f), out(32, 1.0f);
  quantize_row_q8_0(zeros.data(), q.data(), 32);
  convert_to_f32(q.data(), DType::Q8_0, out.data(), 32);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

// What `pcm bench` reports must be the kernel that matmul_forward runs for those weights.
TEST(MatmulReport, DecodeProjectionKindNamesTheKernelThatRuns) {
  EXPECT_STREQ(cpu::decode_projection_kind(DType::F32, false), "fp32-activation");
  EXPECT_STREQ(cpu::decode_projection_kind(DType::BF16, true), "fp32-activation");
  EXPECT_STREQ(cpu::decode_projection_kind(DType::Q8_0, true), "fp32-activation");
  EXPECT_STREQ(cpu::decode_projection_kind(DType::BF16, false),
               cpu::x86::has_avx512_bf16() ? "bf16-activation (AVX512_BF16)" : "fp32-activation");
  EXPECT_STREQ(cpu::decode_projection_kind(DType::Q8_0, false),
               cpu::x86::has_avx512_vnni() ? "int16-activation (AVX512_VNNI)" : "fp32-activation");
}

}  // namespace
}  // namespace pcm
