// AdamW against a hand-computed example, the LR schedule's values, global-norm clipping.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

namespace pcm {
namespace {

ParamSet two_tensors(std::vector<float> a, std::vector<float> b) {
  ParamSet s;
  s.add({"w", {static_cast<int64_t>(a.size())}, a, true});
  s.add({"norm", {static_cast<int64_t>(b.size())}, b, false});
  return s;
}

TEST(AdamW, MatchesHandComputedSteps) {
  ParamSet p = two_tensors({1.0f, -2.0f}, {0.5f});
  ParamSet g = two_tensors({0.1f, -0.3f}, {2.0f});
  AdamWState st = make_adamw_state(p);
  AdamWHyper h{0.1, 0.9, 0.999, 1e-8, 0.01};
  adamw_step(p, g, st, h);
  // Step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2 -> update = lr * sign(g) (eps aside);
  // decay multiplies decayed tensors by 1 - lr*wd = 0.999 first.
  EXPECT_NEAR(p[0].data[0], 1.0 * 0.999 - 0.1 * 0.1 / (0.1 + 1e-8), 1e-6);
  EXPECT_NEAR(p[0].data[1], -2.0 * 0.999 + 0.1 * 0.3 / (0.3 + 1e-8), 1e-6);
  EXPECT_NEAR(p[1].data[0], 0.5 - 0.1, 1e-6);  // no weight decay on "norm"
  // Step 2 with gradient 0.2 on w[0]: m = 0.9*0.01 + 0.1*0.2 = 0.029, v = 0.999*1e-5 + 0.001*0.04
  g[0].data = {0.2f, 0.0f};
  g[1].data = {0.0f};
  double w0 = p[0].data[0];
  adamw_step(p, g, st, h);
  double m = 0.029, v = 0.999 * 1e-5 + 0.001 * 0.04;
  double m_hat = m / (1 - 0.81), v_hat = v / (1 - 0.999 * 0.999);
  EXPECT_NEAR(p[0].data[0], w0 * 0.999 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8), 1e-6);
  EXPECT_EQ(st.step, 2);
}

TEST(GradNorm, GlobalOverTensorsAndScaling) {
  ParamSet g = two_tensors({3.0f, 0.0f}, {4.0f});
  EXPECT_DOUBLE_EQ(global_grad_norm(g), 5.0);
  scale_grads(g, 0.5f);
  EXPECT_DOUBLE_EQ(global_grad_norm(g), 2.5);
  g[0].data[1] = NAN;
  EXPECT_TRUE(std::isnan(global_grad_norm(g)));
}

TEST(LrSchedule, WarmupThenCosineOrLinearToFloor) {
  PhaseConfig p;
  p.lr = 1.0;
  p.min_lr = 0.1;
  p.warmup_steps = 4;
  p.decay = DecayKind::Cosine;
  EXPECT_DOUBLE_EQ(lr_at(p, 0, 14), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(p, 3, 14), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(p, 4, 14), 1.0);                     // decay starts at lr
  EXPECT_NEAR(lr_at(p, 9, 14), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 5 / 9)), 1e-12);
  EXPECT_DOUBLE_EQ(lr_at(p, 13, 14), 0.1);                    // the last step is at the floor
  p.decay = DecayKind::Linear;
  EXPECT_NEAR(lr_at(p, 8, 14), 0.1 + 0.9 * (1 - 4.0 / 9), 1e-12);
  p.decay = DecayKind::Constant;
  EXPECT_DOUBLE_EQ(lr_at(p, 10, 14), 1.0);
  p.warmup_steps = 0;
  p.decay = DecayKind::Linear;
  EXPECT_DOUBLE_EQ(lr_at(p, 0, 5), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(p, 4, 5), 0.1);
}

}  // namespace
}  // namespace pcm
