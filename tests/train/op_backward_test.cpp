// Every op's fp32 backward against float64 central finite differences of a float64 reference forward.
// Loss = sum(w ∘ out) with fixed random w, so dout = w; inputs are small random shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/conv1d_backward.h"
#include "kernels/cpu/dt_embedding.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/matmul_backward.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_backward.h"
#include "kernels/cpu/ssd.h"
#include "kernels/cpu/ssd_backward.h"

namespace pcm {
namespace {

using Vec = std::vector<double>;

Vec rand_vec(size_t n, double lo, double hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& x : v) x = u(rng);
  return v;
}

std::vector<float> to_f(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }

// Central differences of f with respect to every element of x, compared with `analytic`
// (relative error of the whole vector in float64).
void expect_grad(const char* what, Vec& x, const std::function<double()>& f, const std::vector<float>& analytic,
                 double tol = 2e-4) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double h = 1e-6 * std::max(1.0, std::abs(x[i])), keep = x[i];
    x[i] = keep + h;
    const double fp = f();
    x[i] = keep - h;
    const double fm = f();
    x[i] = keep;
    const double fd = (fp - fm) / (2 * h);
    num += (fd - analytic[i]) * (fd - analytic[i]);
    den += fd * fd;
  }
  const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  EXPECT_LT(rel, tol) << what << " (|grad| = " << std::sqrt(den) << ")";
}

double silu(double z) { return z / (1.0 + std::exp(-z)); }

TEST(OpBackward, RmsNorm) {
  const int64_t T = 5, C = 12;
  const double eps = 1e-5;
  Vec x = rand_vec(T * C, -2, 2, 1), w = rand_vec(C, 0.5, 1.5, 2), dout = rand_vec(T * C, -1, 1, 3);
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      double ss = 0.0;
      for (int64_t c = 0; c < C; ++c) ss += x[t * C + c] * x[t * C + c];
      const double r = 1.0 / std::sqrt(ss / C + eps);
      for (int64_t c = 0; c < C; ++c) s += dout[t * C + c] * x[t * C + c] * r * w[c];
    }
    return s;
  };
  std::vector<float> dx(T * C, 7.0f), dw(C, 0.0f);
  auto xf = to_f(x), wf = to_f(w), df = to_f(dout);
  cpu::rmsnorm_backward(dx.data(), dw.data(), df.data(), xf.data(), wf.data(), T, C, eps, false);
  expect_grad("rmsnorm dx", x, f, dx);
  expect_grad("rmsnorm dweight", w, f, dw);
  // accumulate mode adds
  std::vector<float> dx2(T * C, 1.0f), dw2(C, 0.0f);
  cpu::rmsnorm_backward(dx2.data(), dw2.data(), df.data(), xf.data(), wf.data(), T, C, eps, true);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_FLOAT_EQ(dx2[i], dx[i] + 1.0f);
}

TEST(OpBackward, GatedRmsNormPerGroup) {
  const int64_t T = 4, C = 12, group = 4, zs = 20;  // z is a strided slice, like in_proj's output
  const double eps = 1e-5;
  Vec y = rand_vec(T * C, -2, 2, 4), z = rand_vec(T * zs, -3, 3, 5), w = rand_vec(C, 0.5, 1.5, 6),
      dout = rand_vec(T * C, -1, 1, 7);
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t g0 = 0; g0 < C; g0 += group) {
        double ss = 0.0;
        for (int64_t c = g0; c < g0 + group; ++c) {
          const double gv = y[t * C + c] * silu(z[t * zs + c]);
          ss += gv * gv;
        }
        const double r = 1.0 / std::sqrt(ss / group + eps);
        for (int64_t c = g0; c < g0 + group; ++c) s += dout[t * C + c] * y[t * C + c] * silu(z[t * zs + c]) * r * w[c];
      }
    return s;
  };
  std::vector<float> dy(T * C), dz(T * zs, 0.0f), dw(C, 0.0f);
  auto yf = to_f(y), zf = to_f(z), wf = to_f(w), df = to_f(dout);
  cpu::gated_rmsnorm_backward(dy.data(), dz.data(), zs, dw.data(), df.data(), yf.data(), zf.data(), zs, wf.data(), T,
                              C, group, eps);
  // forward agrees with the inference kernel
  std::vector<float> out(T * C);
  cpu::gated_rmsnorm_forward(out.data(), yf.data(), zf.data(), zs, wf.data(), T, C, group, eps);
  double fwd = 0.0;
  for (size_t i = 0; i < out.size(); ++i) fwd += out[i] * dout[i];
  EXPECT_NEAR(fwd, f(), 1e-4 * std::abs(f()) + 1e-5);
  expect_grad("gated dy", y, f, dy);
  expect_grad("gated dz", z, f, dz);
  expect_grad("gated dweight", w, f, dw);
}

TEST(OpBackward, Linear) {
  const int64_t T = 6, R = 5, K = 7;
  Vec x = rand_vec(T * K, -1, 1, 8), W = rand_vec(R * K, -1, 1, 9), b = rand_vec(R, -1, 1, 10),
      dout = rand_vec(T * R, -1, 1, 11);
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < R; ++r) {
        double o = b[r];
        for (int64_t k = 0; k < K; ++k) o += x[t * K + k] * W[r * K + k];
        s += dout[t * R + r] * o;
      }
    return s;
  };
  std::vector<float> dx(T * K), dW(R * K, 0.0f), db(R, 0.0f);
  auto xf = to_f(x), Wf = to_f(W), df = to_f(dout);
  cpu::matmul_backward(dx.data(), dW.data(), db.data(), df.data(), xf.data(), Wf.data(), T, R, K);
  expect_grad("linear dx", x, f, dx);
  expect_grad("linear dW", W, f, dW);
  expect_grad("linear dbias", b, f, db);
}

TEST(OpBackward, CausalConvSiluWithWindow) {
  const int64_t T = 7, C = 5, K = 4, stride = 9;
  Vec in = rand_vec(T * stride, -1, 1, 12), win = rand_vec(C * K, -1, 1, 13), w = rand_vec(C * K, -0.8, 0.8, 14),
      b = rand_vec(C, -0.5, 0.5, 15), dout = rand_vec(T * C, -1, 1, 16);
  auto f = [&] {
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) {
        double pre = b[c];
        for (int64_t k = 0; k < K; ++k) {
          const int64_t j = t - K + 1 + k;
          pre += w[c * K + k] * (j >= 0 ? in[j * stride + c] : win[c * K + K + j]);
        }
        s += dout[t * C + c] * silu(pre);
      }
    return s;
  };
  std::vector<float> din(T * stride, 0.0f), dw(C * K, 0.0f), db(C, 0.0f), dwin(C * K, 0.0f);
  auto inf = to_f(in), winf = to_f(win), wf = to_f(w), bf = to_f(b), df = to_f(dout);
  cpu::conv1d_silu_backward(din.data(), stride, dw.data(), db.data(), dwin.data(), df.data(), inf.data(), stride,
                            winf.data(), wf.data(), bf.data(), T, C, K);
  // forward agrees with the inference kernel
  std::vector<float> out(T * C), wincopy = winf;
  cpu::conv1d_silu_forward(out.data(), inf.data(), stride, wincopy.data(), wf.data(), bf.data(), T, C, K);
  double fwd = 0.0;
  for (size_t i = 0; i < out.size(); ++i) fwd += out[i] * dout[i];
  EXPECT_NEAR(fwd, f(), 1e-5);
  expect_grad("conv din", in, f, din);
  expect_grad("conv dweight", w, f, dw);
  expect_grad("conv dbias", b, f, db);
  dwin[0] = 0.0f;  // window[c, 0] is never read (only K - 1 past inputs matter)
  expect_grad("conv dwindow", win, f, dwin);
}

TEST(OpBackward, DtSoftplusClampZeroWhereClamped) {
  const int64_t T = 6, H = 5, stride = 8;
  const double lo = 0.05, hi = 1.2;
  Vec raw = rand_vec(T * stride, -4, 3, 40), bias = rand_vec(H, -1, 1, 41), ddt = rand_vec(T * H, -1, 1, 42);
  raw[0] = 30.0;  // above softplus' linear threshold, and clamped at hi
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const double v = raw[t * stride + h] + bias[h];
        const double sp = v > 20.0 ? v : std::log1p(std::exp(v));
        s += ddt[t * H + h] * std::clamp(sp, lo, hi);
      }
    return s;
  };
  auto rf = to_f(raw), bf = to_f(bias), df = to_f(ddt);
  std::vector<float> dt(T * H), draw(T * stride, 0.0f), dbias(H, 0.0f);
  cpu::dt_softplus_forward(dt.data(), rf.data(), stride, bf.data(), T, H, lo, hi);
  double fwd = 0.0;
  int clamped = 0;
  for (size_t i = 0; i < dt.size(); ++i) {
    fwd += dt[i] * ddt[i];
    clamped += dt[i] == static_cast<float>(lo) || dt[i] == static_cast<float>(hi);
  }
  EXPECT_NEAR(fwd, f(), 1e-5);
  EXPECT_GT(clamped, 2);  // the case exercises both sides of the clamp
  cpu::dt_softplus_backward(draw.data(), stride, dbias.data(), df.data(), rf.data(), stride, bf.data(), T, H, lo, hi);
  expect_grad("dt draw", raw, f, draw);
  expect_grad("dt dbias", bias, f, dbias);
}

TEST(OpBackward, EmbeddingWithRepeatedIds) {
  const int64_t V = 7, d = 70, T = 9;
  std::vector<int32_t> ids = {3, 1, 3, 6, 0, 3, 1, 5, 3};
  Vec table = rand_vec(V * d, -1, 1, 43), dout = rand_vec(T * d, -1, 1, 44);
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < d; ++c) s += dout[t * d + c] * table[ids[t] * d + c];
    return s;
  };
  auto tf = to_f(table), df = to_f(dout);
  std::vector<float> out(T * d), dtable(V * d, 0.0f);
  cpu::embedding_forward(out.data(), tf.data(), ids.data(), T, d);
  for (int64_t c = 0; c < d; ++c) EXPECT_EQ(out[4 * d + c], tf[0 * d + c]);
  cpu::embedding_backward(dtable.data(), df.data(), ids.data(), T, d);
  expect_grad("embedding", table, f, dtable);
}

struct SsdCase { int64_t T, Q, H, P, G, N; };

class SsdBackward : public ::testing::TestWithParam<SsdCase> {};

TEST_P(SsdBackward, MatchesFiniteDifferences) {
  const auto [T, Q, H, P, G, N] = GetParam();
  const int64_t di = H * P, stride = di + 2 * G * N, hpg = H / G;
  Vec xbc = rand_vec(T * stride, -1, 1, 20), dt = rand_vec(T * H, 0.05, 0.6, 21), A = rand_vec(H, -2.0, -0.3, 22),
      D = rand_vec(H, 0.5, 1.5, 23), s0 = rand_vec(H * P * N, -0.5, 0.5, 24), dy = rand_vec(T * di, -1, 1, 25);
  auto f = [&] {
    double s = 0.0;
    std::vector<double> S(s0.begin(), s0.end());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / hpg;
        const double a = std::exp(dt[t * H + h] * A[h]);
        for (int64_t p = 0; p < P; ++p) {
          double y = D[h] * xbc[t * stride + h * P + p];
          for (int64_t n = 0; n < N; ++n) {
            double& st = S[(h * P + p) * N + n];
            st = a * st + dt[t * H + h] * xbc[t * stride + h * P + p] * xbc[t * stride + di + g * N + n];
            y += st * xbc[t * stride + di + G * N + g * N + n];
          }
          s += dy[t * di + h * P + p] * y;
        }
      }
    return s;
  };
  auto xf = to_f(xbc), dtf = to_f(dt), Af = to_f(A), Df = to_f(D), s0f = to_f(s0), dyf = to_f(dy);
  cpu::SsdInputs in{xf.data(), xf.data() + di, xf.data() + di + G * N, stride, dtf.data(), Af.data(), Df.data()};
  const cpu::SsdShape shape{H, P, G, N};
  // The chunked forward (inference) gives the same loss as the float64 reference.
  std::vector<float> y(T * di), st = s0f, scratch(cpu::ssd_chunked_scratch_floats(Q, shape));
  cpu::ssd_chunked_forward(y.data(), in, st.data(), T, Q, shape, scratch.data());
  double fwd = 0.0;
  for (size_t i = 0; i < y.size(); ++i) fwd += y[i] * dy[i];
  EXPECT_NEAR(fwd, f(), 1e-4 * std::abs(f()));

  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "ssd_chunked_backward" : "ssd_backward (recurrent)");
    std::vector<float> dxbc(T * stride, 0.0f), ddt(T * H), dA(H, 0.0f), dD(H, 0.0f), ds0(H * P * N),
        bscratch(cpu::ssd_backward_scratch_floats(T, shape));
    cpu::SsdGrads g{dxbc.data(), dxbc.data() + di, dxbc.data() + di + G * N, stride, ddt.data(), dA.data(),
                    dD.data(), ds0.data()};
    if (chunked) cpu::ssd_chunked_backward(g, dyf.data(), in, s0f.data(), T, Q, shape, bscratch.data());
    else cpu::ssd_backward(g, dyf.data(), in, s0f.data(), T, Q, shape, bscratch.data());
    expect_grad("ssd dx/dB/dC", xbc, f, dxbc);
    expect_grad("ssd ddt", dt, f, ddt);
    expect_grad("ssd dA", A, f, dA);
    expect_grad("ssd dD", D, f, dD);
    expect_grad("ssd dstate0", s0, f, ds0);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SsdBackward,
                         ::testing::Values(SsdCase{11, 4, 4, 3, 2, 5}, SsdCase{8, 8, 2, 4, 1, 3},
                                           SsdCase{9, 16, 4, 2, 4, 4}, SsdCase{1, 4, 2, 2, 1, 3},
                                           SsdCase{33, 8, 4, 4, 2, 6}));

TEST(OpBackward, LmHeadCrossEntropyInVocabBlocks) {
  const int64_t T = 5, V = 23, d = 6;
  Vec x = rand_vec(T * d, -1, 1, 30), W = rand_vec(V * d, -1, 1, 31);
  std::vector<int32_t> tg = {3, 0, 22, 11, 3};
  auto f = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> l(V);
      double m = -1e300;
      for (int64_t v = 0; v < V; ++v) {
        l[v] = 0.0;
        for (int64_t k = 0; k < d; ++k) l[v] += x[t * d + k] * W[v * d + k];
        m = std::max(m, l[v]);
      }
      double z = 0.0;
      for (double lv : l) z += std::exp(lv - m);
      s += m + std::log(z) - l[tg[t]];
    }
    return s;
  };
  for (int64_t chunk : {4, 7, 23, 100}) {
    std::vector<float> dx(T * d), dW(V * d, 0.0f), scratch(cpu::lm_head_xent_scratch_floats(T, std::min(chunk, V)));
    auto xf = to_f(x), Wf = to_f(W);
    double loss = cpu::lm_head_xent(dx.data(), dW.data(), xf.data(), Wf.data(), tg.data(), T, V, d, chunk,
                                    scratch.data());
    EXPECT_NEAR(loss, f(), 1e-5 * f()) << chunk;
    expect_grad("xent dx", x, f, dx);
    expect_grad("xent dW", W, f, dW);
  }
}

}  // namespace
}  // namespace pcm
