// The fused paths of the CUDA training step against their unfused forms or the CPU: bf16 operands written
// by their producers (dt backward, cross-entropy gradient, TrainGemm taking them ready), the norm
// backwards over many row blocks, AdamW over the flat buffer with pending gradient scales, and the
// scaled sum of squares. Skips without a GPU.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <random>

#include "cuda/cuda_test_util.h"
#include "kernels/cpu/dt_embedding.h"
#include "kernels/cpu/norm_backward.h"
#include "kernels/cuda/train_gemm_cuda.h"
#include "kernels/cuda/train_ops.h"

namespace pcm {
namespace {

using test::DeviceBuffer;

// 1000 rows: 125 blocks of 8, so the weight-gradient partials take the two-level sum.
TEST(CudaTrainFused, NormBackwardsOverManyRowBlocksMatchCpu) {
  PCM_REQUIRE_GPU();
  const int64_t T = 1000, C = 300, gs = 150;
  std::mt19937 rng(31);
  std::vector<float> x = test::random_vec(T * C, -2, 2, rng), w = test::random_vec(C, 0.5f, 1.5f, rng),
                     dout = test::random_vec(T * C, -1, 1, rng), z = test::random_vec(T * C, -3, 3, rng);
  DeviceBuffer<float> d_x(x), d_w(w), d_dout(dout), d_z(z),
      scratch(static_cast<size_t>(cuda::norm_backward_scratch_floats(T, C)));
  std::vector<float> dx(T * C), dw(C, 0.5f);
  cpu::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), T, C, 1e-5f, false);
  DeviceBuffer<float> d_dx(T * C), d_dw(std::vector<float>(C, 0.5f));  // C = 300: the staged RMSNorm kernel
  cuda::rmsnorm_backward(d_dx.get(), false, nullptr, d_dw.get(), d_dout.get(), d_x.get(), d_w.get(), T, C, 1e-5f,
                         scratch.get(), nullptr);
  EXPECT_LT(test::rel_error(d_dx.download(), dx), 1e-5);
  EXPECT_LT(test::rel_error(d_dw.download(), dw), 1e-5);

  std::vector<float> dy(T * C), dz(T * C), gw(C, 0.5f);
  cpu::gated_rmsnorm_backward(dy.data(), dz.data(), C, gw.data(), dout.data(), x.data(), z.data(), C, w.data(), T, C,
                              gs, 1e-5f);
  DeviceBuffer<float> d_dy(T * C), d_dz(T * C), d_gw(std::vector<float>(C, 0.5f));
  cuda::gated_rmsnorm_backward(d_dy.get(), d_dz.get(), nullptr, C, d_gw.get(), nullptr, false, d_dout.get(), d_x.get(),
                               d_z.get(), C, d_w.get(), T, C, gs, 1e-5f, scratch.get(), nullptr);
  EXPECT_LT(test::rel_error(d_dy.download(), dy), 1e-5);
  EXPECT_LT(test::rel_error(d_dz.download(), dz), 1e-5);
  EXPECT_LT(test::rel_error(d_gw.download(), gw), 1e-5);
}

TEST(CudaTrainFused, NormBackwardTooWideIsAClearError) {
  PCM_REQUIRE_GPU();
  try {
    cuda::rmsnorm_backward(nullptr, false, nullptr, nullptr, nullptr, nullptr, nullptr, 4, 8193, 1e-5f, nullptr,
                           nullptr);
    ADD_FAILURE() << "expected an error for 8193 channels";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("8193 channels exceed 8192"), std::string::npos) << e.what();
  }
}

// Raw values on both sides of the clamp; d raw in a strided fp32 matrix and its bf16 copy, then in place
// over ddt (the bf16 mode's layout).
TEST(CudaTrainFused, DtBackwardMatchesCpuWithBf16Copy) {
  PCM_REQUIRE_GPU();
  const int64_t T = 300, H = 24, stride = 40;
  const float lo = 0.01f, hi = 2.0f;
  std::mt19937 rng(32);
  std::vector<float> raw = test::random_vec(T * stride, -6, 3, rng), bias = test::random_vec(H, -1, 1, rng),
                     ddt = test::random_vec(T * H, -1, 1, rng);
  std::vector<float> draw(T * stride, 0.0f), dbias(H, 0.25f);
  cpu::dt_softplus_backward(draw.data(), stride, dbias.data(), ddt.data(), raw.data(), stride, bias.data(), T, H, lo,
                            hi);
  DeviceBuffer<float> d_raw(raw), d_bias(bias), d_ddt(ddt), d_draw(std::vector<float>(T * stride, 0.0f)),
      d_dbias(std::vector<float>(H, 0.25f)), scratch(static_cast<size_t>(cuda::column_sum_scratch_floats(H)));
  DeviceBuffer<uint16_t> d_draw16(T * stride);
  cuda::dt_softplus_backward(d_draw.get(), stride, d_draw16.get(), stride, d_dbias.get(), d_ddt.get(), d_raw.get(),
                             stride, d_bias.get(), T, H, lo, hi, scratch.get(), nullptr);
  const std::vector<float> g = d_draw.download(), g16 = test::bf16_bits_to_f32(d_draw16.download());
  EXPECT_LT(test::rel_error(g, draw), 1e-5);
  EXPECT_LT(test::rel_error(d_dbias.download(), dbias), 1e-5);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) ASSERT_EQ(g16[t * stride + h], test::bf16_round({g[t * stride + h]})[0]);
  // In place: d raw over ddt (stride H), the bias gradient the same.
  DeviceBuffer<float> d_dbias2(std::vector<float>(H, 0.25f));
  cuda::dt_softplus_backward(d_ddt.get(), H, nullptr, 0, d_dbias2.get(), d_ddt.get(), d_raw.get(), stride,
                             d_bias.get(), T, H, lo, hi, scratch.get(), nullptr);
  const std::vector<float> inplace = d_ddt.download();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) ASSERT_EQ(inplace[t * H + h], g[t * stride + h]);
  EXPECT_EQ(d_dbias2.download(), d_dbias.download());
}

// raw in bf16 (the bf16 training's in_proj output): the same results as fp32 raw holding the same values.
TEST(CudaTrainFused, DtBackwardBf16RawEqualsFp32OfTheSameValues) {
  PCM_REQUIRE_GPU();
  const int64_t T = 300, H = 24, stride = 40;
  const float lo = 0.01f, hi = 2.0f;
  std::mt19937 rng(34);
  const std::vector<float> raw = test::random_vec(T * stride, -6, 3, rng), bias = test::random_vec(H, -1, 1, rng),
                           ddt = test::random_vec(T * H, -1, 1, rng);
  DeviceBuffer<float> d_raw(test::bf16_round(raw)), d_bias(bias), d_ddt(ddt),
      scratch(static_cast<size_t>(cuda::column_sum_scratch_floats(H)));
  DeviceBuffer<uint16_t> d_raw16(test::bf16_bits(raw));
  DeviceBuffer<float> d_draw(std::vector<float>(T * stride, 0.0f)), d_dbias(std::vector<float>(H, 0.25f)),
      d_draw2(std::vector<float>(T * stride, 0.0f)), d_dbias2(std::vector<float>(H, 0.25f));
  cuda::dt_softplus_backward(d_draw.get(), stride, nullptr, 0, d_dbias.get(), d_ddt.get(), d_raw.get(), stride,
                             d_bias.get(), T, H, lo, hi, scratch.get(), nullptr);
  cuda::dt_softplus_backward(d_draw2.get(), stride, nullptr, 0, d_dbias2.get(), d_ddt.get(), d_raw16.get(), stride,
                             d_bias.get(), T, H, lo, hi, scratch.get(), nullptr, true);
  EXPECT_EQ(d_draw2.download(), d_draw.download());
  EXPECT_EQ(d_dbias2.download(), d_dbias.download());
}

// The bf16 gradient of a chunk is the in-place fp32 gradient rounded; the logits stay as they were. Widths
// and strides that are multiples of 4 (16-byte loads) and ones that are not.
TEST(CudaTrainFused, XentGradBf16IsTheRoundedInPlaceGradient) {
  PCM_REQUIRE_GPU();
  for (const auto& [vc, ld] : {std::pair<int64_t, int64_t>{3000, 3100}, {2999, 3001}}) {
    const int64_t n = 70, v0 = 1000;
    std::mt19937 rng(33);
    std::vector<float> logits = test::random_vec(n * ld, -8, 8, rng), lse(n);
    std::vector<int32_t> targets(n);
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < vc; ++j) s += std::exp(logits[i * ld + j]);
      lse[i] = static_cast<float>(std::log(s)) + 0.5f;  // as if other chunks held the rest
      targets[i] = static_cast<int32_t>(i % 3 == 0 ? v0 + (rng() % vc) : rng() % 5000);
    }
    DeviceBuffer<float> d_logits(logits), d_inplace(logits), d_lse(lse);
    DeviceBuffer<int32_t> d_targets(targets);
    DeviceBuffer<uint16_t> d_g16(n * vc);
    cuda::xent_chunk_grad(d_inplace.get(), ld, d_lse.get(), d_targets.get(), n, v0, vc, nullptr);
    cuda::xent_chunk_grad(d_logits.get(), ld, d_lse.get(), d_targets.get(), n, v0, vc, nullptr, d_g16.get());
    const std::vector<float> g = d_inplace.download(), g16 = test::bf16_bits_to_f32(d_g16.download());
    EXPECT_EQ(d_logits.download(), logits);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < vc; ++j) {
        const float want = std::exp(logits[i * ld + j] - lse[i]) - (targets[i] == v0 + j ? 1.0f : 0.0f);
        ASSERT_NEAR(g[i * ld + j], want, 1e-6f + 1e-5f * std::abs(want));
        ASSERT_EQ(g16[i * vc + j], test::bf16_round({g[i * ld + j]})[0]);
      }
  }
}

// The one-pass log-sum-exp over two vocabulary chunks (the second with a target in it) equals the float64
// one; strides that allow 16-byte loads and ones that do not; logits that grow along a row (the running
// max rescales often) and that shrink.
TEST(CudaTrainFused, XentStatsOnePassMatchesFloat64) {
  PCM_REQUIRE_GPU();
  for (const auto& [vc, ld] : {std::pair<int64_t, int64_t>{3000, 3000}, {2999, 3001}}) {
    const int64_t n = 40;
    std::mt19937 rng(38);
    std::vector<float> logits = test::random_vec(2 * n * ld, -6, 6, rng);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < vc; ++j) logits[i * ld + j] += (i % 2 ? 1.0f : -1.0f) * 0.004f * static_cast<float>(j);
    std::vector<int32_t> targets(n);
    for (int64_t i = 0; i < n; ++i) targets[i] = static_cast<int32_t>((i * 131) % (2 * vc));
    DeviceBuffer<float> d_l(logits), xe(5 * n);
    DeviceBuffer<int32_t> d_t(targets);
    float* e = xe.get();
    cuda::xent_init(e, e + n, e + 2 * n, n, nullptr);
    for (int64_t c = 0; c < 2; ++c)  // chunk c: vocabulary rows [c vc, (c + 1) vc), rows n c .. of the buffer
      cuda::xent_chunk_stats(e, e + n, e + 2 * n, d_l.get() + c * n * ld, ld, d_t.get(), n, c * vc, vc, nullptr);
    cuda::xent_finish(e + 3 * n, e + 4 * n, e, e + n, e + 2 * n, n, nullptr);
    const std::vector<float> out = xe.download();
    for (int64_t i = 0; i < n; ++i) {
      double m = -1e30, sum = 0;
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t j = 0; j < vc; ++j) m = std::max(m, static_cast<double>(logits[(c * n + i) * ld + j]));
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t j = 0; j < vc; ++j) sum += std::exp(logits[(c * n + i) * ld + j] - m);
      const int64_t tg = targets[i], c = tg / vc;
      const double lse = m + std::log(sum), loss = lse - logits[(c * n + i) * ld + tg % vc];
      ASSERT_NEAR(out[3 * n + i], lse, 2e-5 * std::abs(lse) + 1e-5) << "row " << i << " vc " << vc;
      ASSERT_NEAR(out[4 * n + i], loss, 2e-5 * std::abs(lse) + 1e-5) << "row " << i << " vc " << vc;
    }
  }
}

// A product on operands rounded by their producer equals the one that rounds them itself; fp32 mode
// refuses them.
TEST(CudaTrainFused, GemmTakesReadyBf16Operands) {
  PCM_REQUIRE_GPU();
  const int64_t M = 70, N = 50, K = 90;
  std::mt19937 rng(34);
  std::vector<float> a = test::random_vec(M * K, -1, 1, rng), b = test::random_vec(N * K, -1, 1, rng);
  DeviceBuffer<float> d_a(a), d_b(b), c1(M * N), c2(M * N);
  DeviceBuffer<uint16_t> a16(M * K), b16(N * K);
  cuda::f32_to_bf16_2d(a16.get(), d_a.get(), M, K, K, nullptr);
  cuda::f32_to_bf16_2d(b16.get(), d_b.get(), N, K, K, nullptr);
  cuda::TrainGemm gemm(true);
  gemm.forward(c1.get(), d_a.get(), d_b.get(), M, N, K, nullptr);
  gemm.forward(c2.get(), cuda::Operand::bf16(a16.get()), cuda::Operand::bf16(b16.get()), M, N, K, nullptr);
  EXPECT_EQ(c1.download(), c2.download());
  // backward with dY and X ready: the same as from fp32.
  std::vector<float> dy = test::random_vec(M * N, -1, 1, rng);
  DeviceBuffer<float> d_dy(dy), dx1(M * K), dx2(M * K), dw1(std::vector<float>(N * K, 0.5f)),
      dw2(std::vector<float>(N * K, 0.5f));
  DeviceBuffer<uint16_t> dy16(M * N);
  cuda::f32_to_bf16_2d(dy16.get(), d_dy.get(), M, N, N, nullptr);
  gemm.backward(dx1.get(), 0.0f, dw1.get(), d_dy.get(), d_a.get(), d_b.get(), M, N, K, nullptr);
  gemm.backward(dx2.get(), 0.0f, dw2.get(), cuda::Operand::bf16(dy16.get()), cuda::Operand::bf16(a16.get()), d_b.get(),
                M, N, K, nullptr);
  EXPECT_EQ(dx1.download(), dx2.download());
  EXPECT_EQ(dw1.download(), dw2.download());
  cuda::TrainGemm fp32(false);
  EXPECT_THROW(fp32.forward(c1.get(), cuda::Operand::bf16(a16.get()), d_b.get(), M, N, K, nullptr), std::exception);
}

// Row-major op(A)·op(B) of bf16-rounded operands in float64 (+ beta·C0): the products' reference.
std::vector<float> product_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<float>& a,
                               const std::vector<float>& b, float beta, const std::vector<float>& c0) {
  const std::vector<float> ar = test::bf16_round(a), br = test::bf16_round(b);
  std::vector<float> c(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = beta * c0[i * N + j];
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(ta ? ar[k * M + i] : ar[i * K + k]) *
                                             (tb ? br[j * K + k] : br[k * N + j]);
      c[i * N + j] = static_cast<float>(acc);
    }
  return c;
}

// bf16 products are tuned at their first use among algorithms with the reference's bits: two TrainGemm
// objects (each tuning on its own) and a first and a later call give the same bits, for every product
// form of a step (both transposes, beta 0 and 1 in place, the residual out of place), all equal to the
// float64 product; the residual is read, not written.
TEST(CudaTrainFused, TunedProductsAreExactAndDeterministic) {
  PCM_REQUIRE_GPU();
  const int64_t M = 512, N = 384, K = 256;
  std::mt19937 rng(39);
  const std::vector<float> a = test::random_vec(M * K, -1, 1, rng), b = test::random_vec(N * K, -1, 1, rng),
                           bk = test::random_vec(K * N, -1, 1, rng), at = test::random_vec(K * M, -1, 1, rng),
                           c0 = test::random_vec(M * N, -1, 1, rng);
  DeviceBuffer<float> d_a(a), d_b(b), d_bk(bk), d_at(at), d_r(c0);
  cuda::TrainGemm g1(true), g2(true);
  struct Form {
    bool ta, tb;
    const float* A;
    int64_t lda;
    const float* B;
    int64_t ldb;
    const std::vector<float>&ha, &hb;
  };
  const Form forms[] = {{false, true, d_a.get(), K, d_b.get(), K, a, b},  // X·Wᵀ
                        {true, false, d_at.get(), M, d_bk.get(), N, at, bk},  // dYᵀ·X
                        {false, false, d_a.get(), K, d_bk.get(), N, a, bk}};  // dY·W
  for (const Form& f : forms)
    for (const float beta : {0.0f, 1.0f}) {
      const std::vector<float> want = product_ref(f.ta, f.tb, M, N, K, f.ha, f.hb, beta, c0);
      std::vector<float> first;
      for (int call = 0; call < 2; ++call)
        for (cuda::TrainGemm* g : {&g1, &g2}) {
          DeviceBuffer<float> c(c0);
          g->run(f.ta, f.tb, M, N, K, f.A, f.lda, f.B, f.ldb, beta, c.get(), N, nullptr);
          const std::vector<float> got = c.download();
          if (first.empty()) {
            first = got;
            EXPECT_LT(test::rel_error(got, want), 1e-5) << f.ta << f.tb << " beta " << beta;
          }
          ASSERT_EQ(got, first) << f.ta << f.tb << " beta " << beta << " call " << call;
        }
    }
  const std::vector<float> want = product_ref(false, true, M, N, K, a, b, 1.0f, c0);
  std::vector<float> first;
  for (int call = 0; call < 2; ++call)
    for (cuda::TrainGemm* g : {&g1, &g2}) {
      DeviceBuffer<float> y(M * N);
      g->forward_add(y.get(), d_r.get(), d_a.get(), d_b.get(), M, N, K, nullptr);
      const std::vector<float> got = y.download();
      if (first.empty()) {
        first = got;
        EXPECT_LT(test::rel_error(got, want), 1e-5);
      }
      ASSERT_EQ(got, first) << "residual, call " << call;
    }
  EXPECT_EQ(d_r.download(), c0);
}

// The bf16-output forward (the in_proj output of bf16 training): each value the float64 product rounded to bf16
// (within the rounding of the fp32 accumulation), the same bits from two objects and a first and a later call, at a
// prefill-sized row count (its candidates timed at first use); fp32 mode refuses it.
TEST(CudaTrainFused, Bf16OutputForwardIsTheRoundedProductAndDeterministic) {
  PCM_REQUIRE_GPU();
  const int64_t M = 2048, N = 264, K = 256;
  std::mt19937 rng(40);
  const std::vector<float> a = test::random_vec(M * K, -1, 1, rng), b = test::random_vec(N * K, -1, 1, rng);
  DeviceBuffer<float> d_a(a), d_b(b);
  const std::vector<float> want = product_ref(false, true, M, N, K, a, b, 0.0f, std::vector<float>(M * N, 0.0f));
  cuda::TrainGemm g1(true), g2(true);
  std::vector<uint16_t> first;
  for (int call = 0; call < 2; ++call)
    for (cuda::TrainGemm* g : {&g1, &g2}) {
      DeviceBuffer<uint16_t> y(M * N);
      g->forward_bf16(y.get(), d_a.get(), d_b.get(), M, N, K, nullptr);
      const std::vector<uint16_t> got = y.download();
      if (first.empty()) {
        first = got;
        const std::vector<float> gf = test::bf16_bits_to_f32(got);
        for (size_t i = 0; i < gf.size(); ++i)
          ASSERT_LE(std::fabs(gf[i] - want[i]), std::fabs(want[i]) * (1.0f / 256) + 1e-5f) << i;
      }
      ASSERT_EQ(got, first) << "call " << call;
    }
  cuda::TrainGemm fp32(false);
  DeviceBuffer<uint16_t> y(M * N);
  EXPECT_THROW(fp32.forward_bf16(y.get(), d_a.get(), d_b.get(), M, N, K, nullptr), std::exception);
}

// One launch over tensors with and without decay, the gradient scaled twice on the way: bit-identical to
// scale() twice and then the per-tensor update of optimizer.cpp.
TEST(CudaTrainFused, FlatAdamWWithPendingScalesMatchesScaledPerTensorUpdate) {
  PCM_REQUIRE_GPU();
  // runs [0, 1000), [1000, 1010), [1010, 6011), [6011, 8061): edges inside 4-element groups, a tail of 1
  const std::vector<int64_t> sizes = {1000, 7, 3, 5000, 1, 2050};
  const std::vector<uint8_t> decays = {1, 0, 0, 1, 1, 0};
  std::vector<int64_t> run_end = {1000, 1010, 6011, 8061};
  std::vector<uint8_t> run_decay = {1, 0, 1, 0};
  int64_t n = 0;
  for (int64_t s : sizes) n += s;
  ASSERT_EQ(n, run_end.back());
  std::mt19937 rng(35);
  std::vector<float> w = test::random_vec(n, -1, 1, rng), g = test::random_vec(n, -3, 3, rng),
                     m = test::random_vec(n, -0.1f, 0.1f, rng), v = test::random_vec(n, 0, 0.01f, rng);
  const float f1 = 1.0f / 37.0f, f2 = 0.731f;
  cuda::AdamWArgs a{0.9f, 0.95f, 1e-3f / 0.19f, 1.0f / std::sqrt(0.0975f), 1e-8f, 1.0f - 1e-4f, f1, f2};
  // reference: scaled gradient, then optimizer.cpp's formula per tensor
  std::vector<float> rw = w, rm = m, rv = v;
  int64_t o = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    const float decay = decays[t] ? a.decay : 1.0f;
    for (int64_t i = o; i < o + sizes[t]; ++i) {
      float gi = g[i] * f1;
      gi = gi * f2;
      rm[i] = a.b1 * rm[i] + (1.0f - a.b1) * gi;
      rv[i] = a.b2 * rv[i] + (1.0f - a.b2) * gi * gi;
      rw[i] = rw[i] * decay - a.step_size * rm[i] / (std::sqrt(rv[i]) * a.inv_sqrt_bc2 + a.eps);
    }
    o += sizes[t];
  }
  DeviceBuffer<float> d_w(w), d_g(g), d_m(m), d_v(v);
  DeviceBuffer<int64_t> d_end(run_end);
  DeviceBuffer<uint8_t> d_decay(run_decay);
  cuda::adamw(d_w.get(), d_g.get(), d_m.get(), d_v.get(), n, d_end.get(), d_decay.get(), 4, a, nullptr);
  EXPECT_EQ(d_g.download(), g);  // the gradient itself stays unscaled
  EXPECT_LT(test::rel_error(d_m.download(), rm), 1e-6);
  EXPECT_LT(test::rel_error(d_v.download(), rv), 1e-6);
  EXPECT_LT(test::rel_error(d_w.download(), rw), 1e-6);
  // The scaled sum of squares equals the plain one after two scale() calls.
  DeviceBuffer<double> out(1), scratch(static_cast<size_t>(cuda::sum_squares_scratch_doubles()));
  cuda::sum_squares(out.get(), d_g.get(), n, scratch.get(), nullptr, f1, f2);
  const double fused = out.download()[0];
  cuda::scale(d_g.get(), f1, n, nullptr);
  cuda::scale(d_g.get(), f2, n, nullptr);
  cuda::sum_squares(out.get(), d_g.get(), n, scratch.get(), nullptr);
  EXPECT_EQ(fused, out.download()[0]);
  // Misaligned buffers are refused.
  try {
    cuda::adamw(d_w.get() + 1, d_g.get(), d_m.get(), d_v.get(), n - 1, d_end.get(), d_decay.get(), 4, a, nullptr);
    ADD_FAILURE() << "expected an error for a misaligned buffer";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("16-byte aligned"), std::string::npos) << e.what();
  }
}

// The operand rounding: the flat path (contiguous: the weights; a size that leaves a tail after the
// unrolled loop) and the row path (strided, odd widths), each element rounded to nearest even.
TEST(CudaTrainFused, F32ToBf16FlatAndRowPathsRoundEveryElement) {
  PCM_REQUIRE_GPU();
  std::mt19937 rng(36);
  struct Case {
    int64_t rows, cols, ld;
  };
  for (const Case& c : {Case{3001, 1028, 1028}, Case{5, 4, 4}, Case{300, 64, 72}, Case{77, 33, 33}, Case{9, 5, 7}}) {
    std::vector<float> in = test::random_vec(c.rows * c.ld, -4, 4, rng);
    in[0] = 1.0f + 1.0f / 256.0f;  // a tie: rounds to even (1.0)
    DeviceBuffer<float> d_in(in);
    DeviceBuffer<uint16_t> out(std::vector<uint16_t>(c.rows * c.cols, 0xFFFF));  // NaN poison
    cuda::f32_to_bf16_2d(out.get(), d_in.get(), c.rows, c.cols, c.ld, nullptr);
    const std::vector<float> got = test::bf16_bits_to_f32(out.download());
    ASSERT_EQ(got[0], 1.0f);
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t k = 0; k < c.cols; ++k)
        ASSERT_EQ(got[r * c.cols + k], test::bf16_round({in[r * c.ld + k]})[0])
            << c.rows << "x" << c.cols << " ld " << c.ld << " at " << r << "," << k;
  }
}

}  // namespace
}  // namespace pcm
#endif
