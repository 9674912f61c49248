// pcm train: runs a curriculum (TOML or JSON) of training phases on the CPU or one CUDA GPU, or resumes one.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string config, resume, output_dir, device, precision;
  int64_t stop_after_step = 0;
  int threads = 0;
  bool quiet = false;
};

void run(const Options& o) {
  PCM_CHECK(!o.config.empty(), "--config FILE is required (the curriculum; with --resume, the same one)");
  int threads = apply_threads(o.threads);
  TrainConfig cfg = load_train_config(o.config);
  if (!o.output_dir.empty()) cfg.output_dir = o.output_dir;
  if (!o.device.empty()) cfg.device = o.device;
  if (!o.precision.empty()) cfg.precision = o.precision;
  if (!o.quiet) std::fprintf(stderr, "pcm train: %zu phase(s), output %s, %d thread(s)\n", cfg.phases.size(),
                             cfg.output_dir.c_str(), threads);
  TrainRunOptions ro;
  ro.resume = o.resume;
  ro.stop_after_step = o.stop_after_step;
  ro.quiet = o.quiet;
  TrainRunResult r = run_training(cfg, ro);
  std::printf("%s after %zu step(s); latest checkpoint: %s\n", r.finished ? "finished" : "stopped", r.steps.size(),
              r.final_checkpoint.empty() ? "(none)" : r.final_checkpoint.c_str());
}

PCM_REGISTER_COMMAND({"train", "Train on a curriculum of phases (CPU or CUDA): AdamW, packing, checkpoints, resume",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--config,-c", o->config, "curriculum file (.toml or .json)");
                        sub->add_option("--resume", o->resume,
                                        "continue from a checkpoint dir or an output dir (its latest checkpoint)");
                        sub->add_option("--output-dir,-o", o->output_dir, "override the config's output_dir");
                        sub->add_option("--device", o->device, "cpu or cuda (overrides the config's `device`)")
                            ->check(CLI::IsMember({"cpu", "cuda"}));
                        sub->add_option("--precision", o->precision,
                                        "cuda projections: fp32 (exact) or bf16 (overrides the config's `precision`)")
                            ->check(CLI::IsMember({"fp32", "bf16"}));
                        sub->add_option("--stop-after-step", o->stop_after_step,
                                        "stop after this global step (checkpoints as configured)")
                            ->check(non_negative());
                        sub->add_flag("--quiet,-q", o->quiet, "no progress lines");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
