// Each CUDA backward kernel of training against the CPU backward on random inputs, over packed
// documents (state and conv windows reset at each document start). Skips without a GPU.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "cuda/cuda_test_util.h"
#include "kernels/cpu/conv1d_backward.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_backward.h"
#include "kernels/cpu/ssd_backward.h"
#include "kernels/cuda/train_ops.h"

namespace pcm {
namespace {

using test::DeviceBuffer;

// Documents [0, 37), [37, 38), [38, 100): lengths off every chunk size, one of length 1.
const std::vector<int32_t> kBegin = {0, 37, 38}, kLen = {37, 1, 62};
constexpr int64_t kT = 100;

std::vector<int32_t> row_doc_begin() {
  std::vector<int32_t> r(kT);
  for (size_t i = 0; i < kBegin.size(); ++i)
    for (int32_t t = 0; t < kLen[i]; ++t) r[static_cast<size_t>(kBegin[i] + t)] = kBegin[i];
  return r;
}

struct SsdCase {
  int32_t H, P, G, N;
};

class CudaSsdBackward : public ::testing::TestWithParam<SsdCase> {};

TEST_P(CudaSsdBackward, MatchesCpuPerDocument) {
  PCM_REQUIRE_GPU();
  const SsdCase k = GetParam();
  const int64_t di = static_cast<int64_t>(k.H) * k.P, GN = static_cast<int64_t>(k.G) * k.N, cd = di + 2 * GN;
  const int64_t stride = cd + 3;  // a strided view, as inside the activations
  std::mt19937 rng(11);
  std::vector<float> xbc = test::random_vec(kT * stride, -1, 1, rng), dt = test::random_vec(kT * k.H, 0.01f, 0.3f, rng),
                     A = test::random_vec(k.H, -2.0f, -0.2f, rng), D = test::random_vec(k.H, -1, 1, rng),
                     dy = test::random_vec(kT * di, -1, 1, rng);
  // CPU: the sequential reference backward, one document at a time from zero state.
  std::vector<float> dxbc(kT * stride, 0.0f), ddt(kT * k.H), dA(k.H, 0.0f), dD(k.H, 0.0f);
  const cpu::SsdShape shape{k.H, k.P, k.G, k.N};
  for (size_t i = 0; i < kBegin.size(); ++i) {
    const int64_t b = kBegin[i], len = kLen[i];
    std::vector<float> scratch(static_cast<size_t>(cpu::ssd_backward_scratch_floats(len, shape)));
    const float* x = xbc.data() + b * stride;
    cpu::SsdInputs in{x, x + di, x + di + GN, stride, dt.data() + b * k.H, A.data(), D.data()};
    float* g = dxbc.data() + b * stride;
    cpu::SsdGrads sg{g, g + di, g + di + GN, stride, ddt.data() + b * k.H, dA.data(), dD.data(), nullptr};
    cpu::ssd_backward(sg, dy.data() + b * di, in, nullptr, len, 8, shape, scratch.data());
  }
  // GPU
  const int32_t Q = 16;
  std::vector<int32_t> chunk0;
  int64_t chunks = 0;
  for (int32_t len : kLen) {
    chunk0.push_back(static_cast<int32_t>(chunks));
    chunks += (len + Q - 1) / Q;
  }
  DeviceBuffer<float> d_xbc(xbc), d_dt(dt), d_A(A), d_D(D), d_dy(dy), d_dxbc(kT * stride), d_ddt(kT * k.H),
      d_dA(k.H), d_dD(std::vector<float>(k.H, 0.0f));
  DeviceBuffer<int32_t> d_begin(kBegin), d_len(kLen), d_chunk0(chunk0);
  DeviceBuffer<float> scratch(static_cast<size_t>(
      cuda::ssd_backward_scratch_floats(kT, chunks, 3, Q, k.H, k.G, k.P, k.N)));
  d_dxbc.upload(std::vector<float>(kT * stride, 0.0f));
  d_ddt.poison();
  d_dA.poison();
  cuda::SsdDocs docs;
  docs.count = 3;
  docs.chunks = chunks;
  docs.begin = d_begin.get();
  docs.len = d_len.get();
  docs.chunk0 = d_chunk0.get();
  cuda::ssd_backward({d_dxbc.get(), stride, d_ddt.get(), d_dA.get(), d_dD.get()}, d_dy.get(),
                     {d_xbc.get(), stride, d_dt.get(), d_A.get(), d_D.get()}, docs, k.H, k.G, k.P, k.N, kT, Q,
                     scratch.get(), nullptr);
  EXPECT_LT(test::rel_error(d_dxbc.download(), dxbc), 1e-4);
  EXPECT_LT(test::rel_error(d_ddt.download(), ddt), 1e-4);
  EXPECT_LT(test::rel_error(d_dA.download(), dA), 1e-4);
  EXPECT_LT(test::rel_error(d_dD.download(), dD), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaSsdBackward,
                         ::testing::Values(SsdCase{4, 24, 2, 16}, SsdCase{2, 64, 1, 64}, SsdCase{8, 16, 4, 8},
                                           SsdCase{2, 32, 2, 128}));

TEST(CudaConvBackward, MatchesCpuPerDocument) {
  PCM_REQUIRE_GPU();
  const int64_t C = 40, K = 4, stride = 50;
  std::mt19937 rng(12);
  std::vector<float> in = test::random_vec(kT * stride, -1, 1, rng), w = test::random_vec(C * K, -1, 1, rng),
                     b = test::random_vec(C, -1, 1, rng), dout = test::random_vec(kT * C, -1, 1, rng);
  std::vector<float> din(kT * stride, 0.0f), dw = test::random_vec(C * K, -1, 1, rng), db(C, 0.5f);
  std::vector<float> dw0 = dw, db0 = db;
  for (size_t i = 0; i < kBegin.size(); ++i) {
    const int64_t b0 = kBegin[i];
    cpu::conv1d_silu_backward(din.data() + b0 * stride, stride, dw.data(), db.data(), nullptr, dout.data() + b0 * C,
                              in.data() + b0 * stride, stride, nullptr, w.data(), b.data(), kLen[i], C, K);
  }
  DeviceBuffer<float> d_in(in), d_w(w), d_b(b), d_dout(dout), d_din(std::vector<float>(kT * stride, 0.0f)), d_dw(dw0),
      d_db(db0), scratch(static_cast<size_t>(cuda::conv1d_backward_scratch_floats(C, K)));
  DeviceBuffer<int32_t> d_rows(row_doc_begin());
  DeviceBuffer<uint16_t> d_din16(kT * stride);
  cuda::conv1d_silu_backward(d_din.get(), d_din16.get(), stride, d_dw.get(), d_db.get(), d_dout.get(), d_in.get(),
                             stride, d_w.get(), d_b.get(), d_rows.get(), kT, C, K, scratch.get(), nullptr);
  const std::vector<float> gdin = d_din.download(), gdin16 = test::bf16_bits_to_f32(d_din16.download());
  EXPECT_LT(test::rel_error(gdin, din), 1e-5);
  for (int64_t t = 0; t < kT; ++t)  // the bf16 copy: exactly the fp32 result rounded
    for (int64_t c = 0; c < C; ++c)
      ASSERT_EQ(gdin16[t * stride + c], test::bf16_round({gdin[t * stride + c]})[0]) << t << " " << c;
  EXPECT_LT(test::rel_error(d_dw.download(), dw), 1e-5);
  EXPECT_LT(test::rel_error(d_db.download(), db), 1e-5);
}

// A batch longer than 256 tiles of 64 rows (tiles grow to 65 rows), documents of random lengths (tile
// edges fall inside documents and next to their starts: tiles inside one document take the path without
// boundary tests), K = 3 and 4, no bias for K = 3; an odd width (a channel per thread), an even one (K = 4: pairs
// of channels, 8-byte loads) and a multiple of 4 (K = 4 with bf16 input: 4 channels a thread, 8-byte loads).
TEST(CudaConvBackward, LongBatchMatchesCpuPerDocument) {
  PCM_REQUIRE_GPU();
  for (const auto& [C, stride] : {std::pair<int64_t, int64_t>{7, 9}, {10, 12}, {12, 16}}) {
    const int64_t T = 16500;
    std::mt19937 rng(21);
    std::vector<int32_t> begins, doc_begin(T);
    for (int64_t t = 0; t < T;) {
      begins.push_back(static_cast<int32_t>(t));
      const int64_t len = std::min<int64_t>(T - t, 1 + static_cast<int64_t>(rng() % 300));
      for (int64_t i = 0; i < len; ++i) doc_begin[static_cast<size_t>(t + i)] = static_cast<int32_t>(t);
      t += len;
    }
    begins.push_back(static_cast<int32_t>(T));
    for (const int64_t K : {3, 4}) {
      const bool with_bias = K == 4;
      std::vector<float> in = test::random_vec(T * stride, -1, 1, rng), w = test::random_vec(C * K, -1, 1, rng),
                         b = test::random_vec(C, -1, 1, rng), dout = test::random_vec(T * C, -1, 1, rng);
      std::vector<float> din(T * stride, 0.0f), dw(C * K, 0.25f), db(C, 0.5f);
      const std::vector<float> dw0 = dw, db0 = db;
      for (size_t i = 0; i + 1 < begins.size(); ++i) {
        const int64_t b0 = begins[i], len = begins[i + 1] - b0;
        cpu::conv1d_silu_backward(din.data() + b0 * stride, stride, dw.data(), with_bias ? db.data() : nullptr, nullptr,
                                  dout.data() + b0 * C, in.data() + b0 * stride, stride, nullptr, w.data(),
                                  with_bias ? b.data() : nullptr, len, C, K);
      }
      DeviceBuffer<float> d_in(in), d_w(w), d_b(b), d_dout(dout), d_din(std::vector<float>(T * stride, 0.0f)),
          d_dw(dw0), d_db(db0), scratch(static_cast<size_t>(cuda::conv1d_backward_scratch_floats(C, K)));
      DeviceBuffer<int32_t> d_rows(doc_begin);
      cuda::conv1d_silu_backward(d_din.get(), nullptr, stride, d_dw.get(), with_bias ? d_db.get() : nullptr,
                                 d_dout.get(), d_in.get(), stride, d_w.get(), with_bias ? d_b.get() : nullptr,
                                 d_rows.get(), T, C, K, scratch.get(), nullptr);
      EXPECT_LT(test::rel_error(d_din.download(), din), 1e-5) << "C " << C << " K " << K;
      EXPECT_LT(test::rel_error(d_dw.download(), dw), 1e-5) << "C " << C << " K " << K;
      EXPECT_LT(test::rel_error(d_db.download(), db), 1e-5) << "C " << C << " K " << K;
      // The input in bf16 (the bf16 training's in_proj output): the same results as fp32 holding the same values.
      DeviceBuffer<float> d_inr(test::bf16_round(in)), d_din2(std::vector<float>(T * stride, 0.0f)), d_dw2(dw0),
          d_db2(db0), d_din3(std::vector<float>(T * stride, 0.0f)), d_dw3(dw0), d_db3(db0);
      DeviceBuffer<uint16_t> d_in16(test::bf16_bits(in));
      cuda::conv1d_silu_backward(d_din2.get(), nullptr, stride, d_dw2.get(), with_bias ? d_db2.get() : nullptr,
                                 d_dout.get(), d_inr.get(), stride, d_w.get(), with_bias ? d_b.get() : nullptr,
                                 d_rows.get(), T, C, K, scratch.get(), nullptr);
      cuda::conv1d_silu_backward(d_din3.get(), nullptr, stride, d_dw3.get(), with_bias ? d_db3.get() : nullptr,
                                 d_dout.get(), d_in16.get(), stride, d_w.get(), with_bias ? d_b.get() : nullptr,
                                 d_rows.get(), T, C, K, scratch.get(), nullptr, true);
      EXPECT_EQ(d_din3.download(), d_din2.download()) << "C " << C << " K " << K;
      EXPECT_EQ(d_dw3.download(), d_dw2.download()) << "C " << C << " K " << K;
      EXPECT_EQ(d_db3.download(), d_db2.download()) << "C " << C << " K " << K;
    }
  }
}

struct NormCase {
  int64_t C, gs, zs;
};

// Widths below one block of threads, and above it (several channels per thread, a partial last pass): the
// register kernels; widths and strides of multiples of 4 up to 4096 (the 1.3B layout last): the staged
// kernels (shared memory, 16 rows a block: 100 rows end in a partial block).
class CudaNormBackward : public ::testing::TestWithParam<NormCase> {};

TEST_P(CudaNormBackward, RmsNormAndGatedMatchCpu) {
  PCM_REQUIRE_GPU();
  const int64_t C = GetParam().C, gs = GetParam().gs, zs = GetParam().zs;
  std::mt19937 rng(13);
  std::vector<float> x = test::random_vec(kT * C, -2, 2, rng), w = test::random_vec(C, 0.5f, 1.5f, rng),
                     dout = test::random_vec(kT * C, -1, 1, rng), z = test::random_vec(kT * zs, -3, 3, rng);
  DeviceBuffer<float> d_x(x), d_w(w), d_dout(dout), d_z(z),
      scratch(static_cast<size_t>(cuda::norm_backward_scratch_floats(kT, C)));
  {  // plain RMSNorm, accumulating into dx, with its bf16 copy
    std::vector<float> dx = test::random_vec(kT * C, -1, 1, rng), dwt(C, 0.25f);
    DeviceBuffer<float> d_dx(dx), d_dw(dwt);
    DeviceBuffer<uint16_t> d_dx16(kT * C);
    cpu::rmsnorm_backward(dx.data(), dwt.data(), dout.data(), x.data(), w.data(), kT, C, 1e-5f, true);
    DeviceBuffer<float> d_xn(kT * C);  // the forward's output, recomputed on the way (fp32, then bf16)
    cuda::rmsnorm_backward(d_dx.get(), true, d_dx16.get(), d_dw.get(), d_dout.get(), d_x.get(), d_w.get(), kT, C,
                           1e-5f, scratch.get(), nullptr, d_xn.get(), false);
    const std::vector<float> gdx = d_dx.download();
    EXPECT_LT(test::rel_error(gdx, dx), 1e-5);
    EXPECT_EQ(test::bf16_bits_to_f32(d_dx16.download()), test::bf16_round(gdx));
    EXPECT_LT(test::rel_error(d_dw.download(), dwt), 1e-5);
    std::vector<float> xn(kT * C);
    cpu::rmsnorm_forward(xn.data(), x.data(), w.data(), kT, C, 1e-5f);
    const std::vector<float> gxn = d_xn.download();
    EXPECT_LT(test::rel_error(gxn, xn), 1e-6);
    DeviceBuffer<float> d_dx2(dx), d_dw2(std::vector<float>(C, 0.0f));
    DeviceBuffer<uint16_t> d_xn16(kT * C);
    cuda::rmsnorm_backward(d_dx2.get(), false, nullptr, d_dw2.get(), d_dout.get(), d_x.get(), d_w.get(), kT, C, 1e-5f,
                           scratch.get(), nullptr, d_xn16.get(), true);
    EXPECT_EQ(test::bf16_bits_to_f32(d_xn16.download()), test::bf16_round(gxn));
  }
  {  // grouped gated RMSNorm, dz into a strided matrix
    std::vector<float> dy(kT * C), dz(kT * zs, 0.0f), dwt(C, 0.25f);
    DeviceBuffer<float> d_dy(kT * C), d_dz(dz), d_dw(dwt);
    cpu::gated_rmsnorm_backward(dy.data(), dz.data(), zs, dwt.data(), dout.data(), x.data(), z.data(), zs, w.data(), kT,
                                C, gs, 1e-5f);
    DeviceBuffer<float> d_yn(kT * C);
    cuda::gated_rmsnorm_backward(d_dy.get(), d_dz.get(), nullptr, zs, d_dw.get(), d_yn.get(), false, d_dout.get(),
                                 d_x.get(), d_z.get(), zs, d_w.get(), kT, C, gs, 1e-5f, scratch.get(), nullptr);
    std::vector<float> yn(kT * C);  // the forward's output, as the backward recomputes it
    cpu::gated_rmsnorm_forward(yn.data(), x.data(), z.data(), zs, w.data(), kT, C, gs, 1e-5f);
    const std::vector<float> gyn = d_yn.download(), gdz = d_dz.download();
    EXPECT_LT(test::rel_error(gyn, yn), 1e-5);
    EXPECT_LT(test::rel_error(d_dy.download(), dy), 1e-5);
    EXPECT_LT(test::rel_error(gdz, dz), 1e-5);
    EXPECT_LT(test::rel_error(d_dw.download(), dwt), 1e-5);
    // bf16 mode's outputs: yn and dz (strided) rounded from the same values, dz in fp32 not written.
    DeviceBuffer<uint16_t> d_yn16(kT * C), d_dz16(kT * zs);
    DeviceBuffer<float> d_dw2(std::vector<float>(C, 0.25f));
    cuda::gated_rmsnorm_backward(d_dy.get(), nullptr, d_dz16.get(), zs, d_dw2.get(), d_yn16.get(), true, d_dout.get(),
                                 d_x.get(), d_z.get(), zs, d_w.get(), kT, C, gs, 1e-5f, scratch.get(), nullptr);
    EXPECT_EQ(test::bf16_bits_to_f32(d_yn16.download()), test::bf16_round(gyn));
    const std::vector<float> gdz16 = test::bf16_bits_to_f32(d_dz16.download());
    for (int64_t t = 0; t < kT; ++t)
      for (int64_t c = 0; c < C; ++c)
        ASSERT_EQ(gdz16[t * zs + c], test::bf16_round({gdz[t * zs + c]})[0]) << t << " " << c;
    EXPECT_EQ(d_dw2.download(), d_dw.download());
  }
  // y and/or z in bf16 (the bf16 training's SSD output and in_proj output): the same results as fp32 holding the
  // same values.
  for (const auto& [y16, z16] : {std::pair<bool, bool>{true, false}, {false, true}, {true, true}}) {
    const std::vector<float> xr = y16 ? test::bf16_round(x) : x, zr = z16 ? test::bf16_round(z) : z;
    DeviceBuffer<float> d_xr(xr), d_zr(zr), d_dy(kT * C), d_dz(std::vector<float>(kT * zs, 0.0f)),
        d_dw(std::vector<float>(C, 0.25f)), d_yn(kT * C);
    DeviceBuffer<uint16_t> d_x16(test::bf16_bits(x)), d_z16(test::bf16_bits(z));
    cuda::gated_rmsnorm_backward(d_dy.get(), d_dz.get(), nullptr, zs, d_dw.get(), d_yn.get(), false, d_dout.get(),
                                 d_xr.get(), d_zr.get(), zs, d_w.get(), kT, C, gs, 1e-5f, scratch.get(), nullptr);
    DeviceBuffer<float> d_dy2(kT * C), d_dz2(std::vector<float>(kT * zs, 0.0f)), d_dw2(std::vector<float>(C, 0.25f)),
        d_yn2(kT * C);
    const void* y = y16 ? static_cast<const void*>(d_x16.get()) : d_xr.get();
    const void* zz = z16 ? static_cast<const void*>(d_z16.get()) : d_zr.get();
    cuda::gated_rmsnorm_backward(d_dy2.get(), d_dz2.get(), nullptr, zs, d_dw2.get(), d_yn2.get(), false, d_dout.get(),
                                 y, zz, zs, d_w.get(), kT, C, gs, 1e-5f, scratch.get(), nullptr, y16, z16);
    EXPECT_EQ(d_dy2.download(), d_dy.download()) << y16 << z16;
    EXPECT_EQ(d_dz2.download(), d_dz.download()) << y16 << z16;
    EXPECT_EQ(d_dw2.download(), d_dw.download()) << y16 << z16;
    EXPECT_EQ(d_yn2.download(), d_yn.download()) << y16 << z16;
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, CudaNormBackward,
                         ::testing::Values(NormCase{96, 32, 130}, NormCase{1500, 750, 1510}, NormCase{8192, 8192, 8200},
                                           NormCase{1024, 512, 1032}, NormCase{4096, 4096, 8512}));

}  // namespace
}  // namespace pcm
#endif
