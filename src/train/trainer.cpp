#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <set>

#include "io/jsonl.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"
#include "train/model_grad.h"
#include "train/optimizer.h"
#include "train/train_backend.h"
#include "train/train_checkpoint.h"
#include "util/error.h"
#include "util/file.h"
#include "util/progress.h"

namespace pcm {
namespace fs = std::filesystem;
namespace {

// FNV-1a of everything that decides which rows and updates a step sees: a resume must not silently
// continue a different curriculum.
std::string curriculum_digest(const TrainConfig& c) {
  std::string s = fmt::format("seed={};", c.seed);
  for (const PhaseConfig& p : c.phases) {
    s += fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{};", p.name, p.epochs, p.steps, p.seq_len,
                     p.batch_tokens, p.micro_batch_rows, p.lr, p.min_lr, p.warmup_steps, decay_name(p.decay),
                     p.weight_decay, p.beta1, p.beta2, p.eps, p.grad_clip, static_cast<int>(p.overlong),
                     p.datasets.size(), c.recompute);
    for (const DatasetSpec& d : p.datasets) s += fmt::format("{}*{};", d.path, d.weight);
  }
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
  return fmt::format("{:016x}", h);
}

// After a kill, metrics.jsonl may hold rows past the checkpoint we resume from: keep rows up to it.
void trim_metrics(const std::string& path, int64_t global_step) {
  if (!fs::exists(path)) return;
  std::string out;
  for_each_jsonl(path, [&](const json& row, int64_t) {
    // A phase_start row at the resume step is written again when that phase (re)starts.
    int64_t step = row.value("step", int64_t{0});
    if (row.contains("event") ? step < global_step : step <= global_step) out += row.dump() + "\n";
  });
  write_file_atomic(path, out);
}

void prune_step_checkpoints(const std::string& out_dir, int64_t keep, const std::string& current) {
  std::set<int64_t> steps;
  for (const auto& e : fs::directory_iterator(out_dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.find(".tmp") == std::string::npos && e.is_directory()) {
      try {
        steps.insert(std::stoll(n.substr(5)));
      } catch (...) {
      }
    }
  }
  while (static_cast<int64_t>(steps.size()) > keep) {
    std::string victim = fmt::format("{}/step-{:08}", out_dir, *steps.begin());
    if (victim != current) fs::remove_all(victim);
    steps.erase(steps.begin());
  }
}

}  // namespace

TrainRunResult run_training(const TrainConfig& cfg, const TrainRunOptions& opts) {
  require_train_device(cfg.device);  // before any checkpoint is read or output directory made
  check_train_inputs(cfg);
  TrainRunResult result;
  const std::string digest = curriculum_digest(cfg);
  Mamba2Config mcfg;
  ParamSet params;
  AdamWState opt;
  TrainerPosition pos;
  std::string out_dir = cfg.output_dir;

  if (!opts.resume.empty()) {
    std::string ck = opts.resume;
    if (!fs::exists(ck + "/trainer_state.json")) {
      ck = latest_checkpoint(opts.resume);
      if (ck.empty()) fail("--resume {}: neither a checkpoint nor an output dir with a `latest` checkpoint", opts.resume);
      out_dir = opts.resume;
    } else {
      out_dir = fs::path(ck).parent_path().string();
    }
    check_adamw_fits_in_memory(load_mamba2_config(ck), "--resume " + ck);
    load_train_checkpoint(ck, &mcfg, &params, &opt, &pos);
    if (pos.config_digest != digest)
      fail("--resume {}: the checkpoint was written by a different curriculum (phases, data, seed or "
           "optimizer numbers changed)", ck);
    if (!opts.quiet) fmt::print(stderr, "resuming from {} (global step {}, phase {})\n", ck, pos.global_step, pos.phase + 1);
  } else {
    if (!latest_checkpoint(out_dir).empty())
      fail("{} already holds a run (latest checkpoint {}); use --resume {} or another output_dir", out_dir,
           latest_checkpoint(out_dir), out_dir);
    if (!cfg.init_from.empty()) {
      check_adamw_fits_in_memory(load_mamba2_config(cfg.init_from), cfg.source + ": init_from " + cfg.init_from);
      params = ParamSet::from_model_dir(cfg.init_from, &mcfg);
    } else {
      mcfg = cfg.model;
      check_adamw_fits_in_memory(mcfg, cfg.source + ": model");
      params = ParamSet::random(mcfg, cfg.seed);
    }
    opt = make_adamw_state(params);
    pos.seed = cfg.seed;
    pos.config_digest = digest;
  }
  fs::create_directories(out_dir);

  std::optional<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;
  if (!cfg.tokenizer.empty() && fs::exists(cfg.tokenizer + "/tokenizer.json")) {
    tokenizer = Tokenizer::from_dir(cfg.tokenizer);
    if (ChatTemplate::available(cfg.tokenizer)) chat = ChatTemplate::from_dir(cfg.tokenizer);
  }
  TextCodec codec{tokenizer ? &*tokenizer : nullptr, chat ? &*chat : nullptr};

  const std::string metrics_path = out_dir + "/metrics.jsonl";
  trim_metrics(metrics_path, pos.global_step);
  JsonlAppender metrics(metrics_path);

  TrainBackendOptions bopt;
  bopt.device = cfg.device;
  bopt.precision = cfg.precision;
  bopt.recompute_per_layer = cfg.recompute;
  bopt.vocab_chunk = cfg.vocab_chunk;
  std::unique_ptr<TrainBackend> backend = make_train_backend(mcfg, params, opt, bopt);
  if (!opts.quiet) fmt::print(stderr, "training on {} ({})\n", cfg.device, cfg.device == "cuda" ? cfg.precision : "fp32");

  auto save = [&](const std::string& name) {
    std::string dir = out_dir + "/" + name;
    backend->sync_to_host();
    save_train_checkpoint(dir, mcfg, params, opt, pos, cfg.save_dtype, cfg.tokenizer);
    set_latest_checkpoint(out_dir, name);
    result.final_checkpoint = dir;
    return dir;
  };

  while (pos.phase < static_cast<int64_t>(cfg.phases.size())) {
    const PhaseConfig& phase = cfg.phases[pos.phase];
    PhaseData data(phase, codec, cfg.seed + 1000003ULL * static_cast<uint64_t>(pos.phase));
    const int64_t rows_per_step = phase.rows_per_step();
    const int64_t total = phase.steps > 0
                              ? phase.steps
                              : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                    phase.epochs * static_cast<double>(data.rows_per_epoch()) / rows_per_step)));
    const PackStats& st = data.epoch_stats();
    if (pos.step_in_phase == 0) {
      metrics.append({{"event", "phase_start"}, {"step", pos.global_step}, {"phase", pos.phase + 1},
                      {"phase_name", phase.name}, {"steps", total}, {"documents", st.documents},
                      {"truncated", st.truncated}, {"dropped", st.dropped}, {"rows_per_epoch", data.rows_per_epoch()},
                      {"loss_tokens_per_epoch", st.loss_tokens}});
    }
    if (!opts.quiet)
      fmt::print(stderr, "phase {}/{} '{}': {} steps of {} rows x {} tokens; epoch = {} documents -> {} rows "
                 "({} loss tokens), {} truncated, {} dropped (overlong = {})\n",
                 pos.phase + 1, cfg.phases.size(), phase.name, total, rows_per_step, phase.seq_len, st.documents,
                 data.rows_per_epoch(), st.loss_tokens, st.truncated, st.dropped,
                 phase.overlong == OverlongRule::Truncate ? "truncate" : "drop");
    ProgressMeter meter(total);
    meter.update(pos.step_in_phase, 0);
    while (pos.step_in_phase < total) {
      auto t0 = std::chrono::steady_clock::now();
      backend->zero_grads();
      double loss_sum = 0;
      int64_t loss_tokens = 0;
      for (int64_t r = 0; r < rows_per_step; r += phase.micro_batch_rows) {
        PackedBatch b = data.rows(pos.row_cursor + r, phase.micro_batch_rows);
        LossResult lr = backend->accumulate(b);
        loss_sum += lr.loss_sum;
        loss_tokens += lr.tokens;
      }
      pos.row_cursor += rows_per_step;
      const double lr = lr_at(phase, pos.step_in_phase, total);
      double loss = loss_tokens > 0 ? loss_sum / static_cast<double>(loss_tokens) : 0.0;
      if (loss_tokens > 0) backend->scale_grads(static_cast<float>(1.0 / static_cast<double>(loss_tokens)));
      const double norm = backend->grad_norm();
      const bool bad = !std::isfinite(loss) || !std::isfinite(norm);
      if (bad) {
        pos.bad_in_row++;
        pos.skipped_total++;
      } else if (loss_tokens > 0) {
        if (phase.grad_clip > 0 && norm > phase.grad_clip) backend->scale_grads(static_cast<float>(phase.grad_clip / norm));
        backend->adamw_step({lr, phase.beta1, phase.beta2, phase.eps, phase.weight_decay});
        pos.bad_in_row = 0;
      }
      pos.step_in_phase++;
      pos.global_step++;
      pos.tokens_seen += static_cast<double>(loss_tokens);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double step_tokens = static_cast<double>(rows_per_step * phase.seq_len);
      meter.update(pos.step_in_phase, step_tokens);
      json row = {{"step", pos.global_step}, {"phase", pos.phase + 1}, {"phase_name", phase.name},
                  {"step_in_phase", pos.step_in_phase}, {"lr", lr}, {"grad_norm", norm},
                  {"loss_tokens", loss_tokens}, {"tokens_per_s", step_tokens / secs}, {"step_seconds", secs}};
      row["loss"] = std::isfinite(loss) ? json(loss) : json(nullptr);
      if (bad) row["skipped"] = "non-finite " + std::string(std::isfinite(loss) ? "gradient" : "loss");
      metrics.append(row);
      result.steps.push_back({pos.global_step, loss, lr, norm, bad});
      if (!opts.quiet) {
        print_progress_line(fmt::format("step {} | phase {} {}/{} | loss {:.4f} | lr {:.3e} | gnorm {:.3f} | {:.0f} tok/s | "
                                        "ETA {}{}",
                                        pos.global_step, pos.phase + 1, pos.step_in_phase, total, loss, lr, norm,
                                        meter.rate(), ProgressMeter::format_duration(meter.eta_seconds()),
                                        bad ? " | SKIPPED (non-finite)" : ""),
                            pos.step_in_phase == total);
      }
      if (bad && pos.bad_in_row >= cfg.max_bad_steps) {
        metrics.sync();
        fail("stopping: {} steps in a row had a non-finite loss or gradient (last at global step {}); the last "
             "checkpoint is {}", pos.bad_in_row, pos.global_step,
             latest_checkpoint(out_dir).empty() ? "none" : latest_checkpoint(out_dir));
      }
      const bool phase_end = pos.step_in_phase == total;
      if (!phase_end && cfg.save_every > 0 && pos.global_step % cfg.save_every == 0) {
        std::string dir = save(fmt::format("step-{:08}", pos.global_step));
        prune_step_checkpoints(out_dir, cfg.keep_checkpoints, dir);
      }
      if (!phase_end && opts.stop_after_step > 0 && pos.global_step >= opts.stop_after_step) {
        metrics.sync();
        return result;
      }
    }
    // Phase end: the checkpoint already points at the next phase's start.
    const std::string name = fmt::format("phase{}-{}", pos.phase + 1, phase.name);
    pos.phase++;
    pos.step_in_phase = 0;
    pos.row_cursor = 0;
    std::string dir = save(name);
    metrics.sync();
    if (!opts.quiet) fmt::print(stderr, "phase '{}' done: checkpoint {}\n", phase.name, dir);
    if (opts.stop_after_step > 0 && pos.global_step >= opts.stop_after_step &&
        pos.phase < static_cast<int64_t>(cfg.phases.size()))
      return result;
  }
  result.finished = true;
  return result;
}

}  // namespace pcm
