// The training device is checked before any weights are read or drawn and before the output directory
// is made: a wrong --device is a clear error that costs nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "test_util.h"
#include "train/train_backend.h"
#include "train/trainer.h"
#include "util/error.h"

#ifdef PCM_HAVE_CUDA
#include "cuda/cuda_test_util.h"
#endif

namespace pcm {
namespace {

using test::error_of;

TEST(TrainDevice, UnknownDeviceIsNamed) {
  const std::string e = error_of([] { require_train_device("tpu"); });
  EXPECT_NE(e.find("unknown training device 'tpu'"), std::string::npos) << e;
}

TEST(TrainDevice, CpuIsAlwaysAvailable) { EXPECT_EQ(error_of([] { require_train_device("cpu"); }), ""); }

TEST(TrainDevice, CudaFailsClearlyWithoutAGpu) {
  bool gpu = false;
#ifdef PCM_HAVE_CUDA
  gpu = test::have_gpu();
#endif
  const std::string e = error_of([] { require_train_device("cuda"); });
  if (gpu) {
    EXPECT_EQ(e, "");
  } else {
    EXPECT_NE(e.find("device 'cuda'"), std::string::npos) << e;
  }
}

TEST(TrainDevice, RunTrainingChecksTheDeviceFirst) {
  test::TempDir dir;
  TrainConfig cfg;
  cfg.device = "tpu";
  cfg.init_from = dir.file("no-such-checkpoint");  // would fail later, naming the checkpoint
  cfg.output_dir = dir.file("out");
  const std::string e = error_of([&] { run_training(cfg, TrainRunOptions{}); });
  EXPECT_NE(e.find("unknown training device 'tpu'"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(cfg.output_dir));
}

}  // namespace
}  // namespace pcm
